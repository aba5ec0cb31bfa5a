/* The packed file of a compiled model: everything an AOT binary needs at run
 * time besides its code (the program, the tokenizer, generation defaults, and
 * every buffer the program points to, weights in the kernels' dtype), in
 * checksummed sections. Layout, little-endian:
 *
 *   [header: 4096 bytes][sections, each at a 64-byte boundary][section table]
 *
 * Buffers come first (from byte 4096 on, so the run of them can be mmap'ed),
 * then the metadata sections, then the table; the header is written last.
 * A pack may sit inside another file (appended to an executable): offsets are
 * from the pack's first byte. Readers refuse, naming the file and the
 * problem, any pack that is not one, has another version, holds weights of
 * a dtype the binary does not read, was made for another target CPU or
 * binary, is truncated or fails a checksum. */
#ifndef OLMOC_PACK_H
#define OLMOC_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/checksum.h"
#include "olmoc/error.h"
#include "olmoc/machine.h"
#include "olmoc/output.h"
#include "olmoc/progress.h"

#define RT_PACK_MAGIC "OLMOCPAK" /* 8 bytes, no NUL */
/* 3: program steps say how a KV cache is laid out (head-major caches).
 * 2: q8 weights (RT_PACK_Q8) and the program's scratch buffers (recorded by
 * size, allocated at load: runtime/executor/program_file.c). 1 had neither. */
#define RT_PACK_VERSION 3
#define RT_PACK_HEADER_BYTES 4096
#define RT_PACK_ALIGN 64

/* What a section holds. */
typedef enum rt_pack_kind {
  RT_PACK_BUFFER = 1,    /* bytes a program argument points into: a weight, a rope table, ... */
  RT_PACK_META = 2,      /* generation defaults, EOS ids, chat template (olmoc/aot.h) */
  RT_PACK_TOKENIZER = 3, /* the tokenizer, prebuilt (rt_tokenizer_pack) */
  RT_PACK_PROGRAM = 4,   /* the executor program (rt_program_pack) */
  RT_PACK_TENSORS = 5,   /* a quantized checkpoint's tensor index (olmoc/quantized.h), JSON */
} rt_pack_kind;

/* The weights' dtype, as the header records it (stable codes, not ir_dtype). */
typedef enum rt_pack_dtype {
  RT_PACK_F32 = 1,
  RT_PACK_BF16 = 2,
  RT_PACK_Q8 = 3, /* matmul weights int8 in groups of 32 with f16 scales (codegen/panels/panel_q8.c),
                     the embedding table in the checkpoint's f32 or bf16, norms f32 */
  RT_PACK_Q4 = 4, /* as RT_PACK_Q8 with the matmul weights other than the LM head in 4 bits
                     (codegen/panels/panel_q4.c) */
} rt_pack_dtype;

typedef struct rt_pack_header {
  char magic[8];            /* RT_PACK_MAGIC */
  uint32_t version;         /* RT_PACK_VERSION */
  uint32_t header_bytes;    /* RT_PACK_HEADER_BYTES */
  uint64_t pack_bytes;      /* the whole pack, header and table included */
  uint64_t build_id;        /* the binary's: a pack runs only with the binary compiled with it */
  uint32_t dtype;           /* rt_pack_dtype */
  uint32_t n_sections;
  uint64_t table_offset;    /* n_sections rt_pack_section entries */
  uint64_t table_checksum;  /* rt_checksum64 of the table */
  uint64_t header_checksum; /* rt_checksum64 of the header with this field zero */
  char cpu[64];             /* the target CPU (LLVM's name), NUL-terminated */
  char features[3968];      /* the target's LLVM feature string, NUL-terminated */
} rt_pack_header;

typedef struct rt_pack_section {
  uint32_t kind;     /* rt_pack_kind */
  uint32_t reserved; /* 0 */
  uint64_t offset;   /* from the pack's start, a multiple of RT_PACK_ALIGN */
  uint64_t bytes;
  uint64_t checksum; /* rt_checksum64 of the bytes */
  char name[96];     /* what it is, for messages (a tensor name), NUL-terminated */
} rt_pack_section;

_Static_assert(sizeof(rt_pack_header) == RT_PACK_HEADER_BYTES, "the header is one 4 KiB block");
_Static_assert(sizeof(rt_pack_section) == 128, "table entries are 128 bytes");


/* ---- writing ---- */

typedef struct rt_pack_writer rt_pack_writer;

typedef struct rt_pack_target {
  const char *cpu, *features;
  uint64_t build_id;
  rt_pack_dtype dtype;
} rt_pack_target;

/* Starts writing path (through a temporary beside it, renamed into place by
 * rt_pack_finish). */
int rt_pack_create(const char *path, const rt_pack_target *t, rt_pack_writer **out, oc_error *e);
/* A section from memory; *index (if not NULL) is its number. */
int rt_pack_add(rt_pack_writer *w, rt_pack_kind kind, const char *name, const void *data, size_t n,
                int *index, oc_error *e);
/* A section written in pieces: begin, write any number of times, end. */
int rt_pack_begin(rt_pack_writer *w, rt_pack_kind kind, const char *name, int *index, oc_error *e);
int rt_pack_write(rt_pack_writer *w, const void *data, size_t n, oc_error *e);
int rt_pack_end(rt_pack_writer *w, oc_error *e);
/* The finished section `index` mapped read-only from the file being written
 * (valid until the writer is freed), so lowering can point at it without a
 * copy in memory. Pointers into it resolve to the section. */
const void *rt_pack_map(rt_pack_writer *w, int index, oc_error *e);
/* Notes that memory [base, base+n) holds the bytes of section `index`, so
 * pointers into it resolve to (section, offset). */
int rt_pack_note(rt_pack_writer *w, const void *base, size_t n, int index, oc_error *e);
/* Offers read-only file-mapped memory [base, base+n) (a checkpoint tensor):
 * it becomes a section named `name` only if a pointer into it is resolved,
 * written then in pieces, its pages released as they go. */
int rt_pack_offer(rt_pack_writer *w, const void *base, size_t n, const char *name, oc_error *e);
/* The section and offset of a pointer into noted or offered memory, writing
 * an offered region out on first use; fails naming `what` otherwise. */
int rt_pack_resolve(rt_pack_writer *w, const void *ptr, const char *what, int *index,
                    uint64_t *offset, oc_error *e);
/* n bytes made by fill(ctx, at, buf, len) piece by piece into a scratch
 * file beside the pack (deleted, never part of it), mapped back read-only
 * and offered as name: memory that costs no RAM until read. */
typedef int (*rt_pack_fill_fn)(void *ctx, uint64_t at, void *buf, size_t len, oc_error *e);
const void *rt_pack_stage(rt_pack_writer *w, const char *name, uint64_t n, rt_pack_fill_fn fill,
                          void *ctx, oc_error *e);
/* Lets the kernel drop this process's pages of [p, p+n) when it lies in
 * offered memory (file mappings: they come back if read again); else nothing. */
void rt_pack_release(const rt_pack_writer *w, const void *p, size_t n);
/* The same for memory the caller knows is a read-only file mapping (the
 * whole pages inside [p, p+n)). */
void rt_release_pages(const void *p, size_t n);
/* Writes the table and the header, syncs, renames into place, frees w. */
int rt_pack_finish(rt_pack_writer *w, oc_error *e);
/* The same but for the last step: the file, complete and synced, goes to
 * *out, to be put in place with others (rt_output_commit) or abandoned;
 * on failure *out is zero and nothing is left. */
int rt_pack_finish_to(rt_pack_writer *w, rt_output *out, oc_error *e);
/* Removes the temporary and frees w (NULL is fine). */
void rt_pack_abandon(rt_pack_writer *w);

/* A writer for a scratch pack: an unnamed file in directory dir (O_TMPFILE,
 * else a name removed at once), so nothing is left in dir whatever ends the
 * process, gone when the writer is freed. Its sections are written and
 * mapped back (rt_pack_map) as any pack's, but it is never finished: free it
 * with rt_pack_abandon. Refused, naming dir and the sizes, when dir lacks
 * room for `bytes` of sections or lives in memory (tmpfs, ramfs: its pages
 * could not be evicted without swap). */
int rt_pack_create_scratch(const char *dir, uint64_t bytes, rt_pack_writer **out, oc_error *e);

/* Appends the pack in file descriptor pack (named pack_path in messages) to
 * the file open for writing in fd (an executable or a shared library, named
 * path), starting at a 4096-byte boundary, followed by a trailer that
 * rt_pack_find_embedded finds; the MiB copied report to progress (NULL:
 * silent). Neither descriptor's offset is used or moved; fd is not synced. */
int rt_pack_append(int pack, const char *pack_path, int fd, const char *path, const oc_progress *progress,
                   oc_error *e);

/* ---- reading ---- */

typedef struct rt_pack rt_pack;

/* What the reading binary was built for: a pack made for anything else is refused. */
typedef struct rt_pack_expect {
  const char *cpu, *features;
  uint64_t build_id;
  uint32_t dtype; /* rt_pack_dtype the binary's kernels read; 0: any this reader knows */
} rt_pack_expect;

typedef enum rt_pack_load {
  RT_PACK_READ, /* buffers read into anonymous memory on 2 MiB pages (madvise), every checksum verified */
  RT_PACK_MMAP, /* buffers mmap'ed from the file: fast start, buffer checksums not verified */
  RT_PACK_MMAP_CHECKED, /* mmap'ed, and every checksum verified (each page read once, into the page cache) */
} rt_pack_load;

/* Opens the pack at byte `at` of path, checks it against x and loads it;
 * RT_PACK_READ and RT_PACK_MMAP_CHECKED report the buffer sections read to
 * progress (NULL: silent). */
int rt_pack_open(const char *path, uint64_t at, const rt_pack_expect *x, rt_pack_load how,
                 const oc_progress *progress, rt_pack **out, oc_error *e);
void rt_pack_close(rt_pack *p);

/* Where a pack appended by rt_pack_append starts in path; *found false when
 * the file has none (not an error). */
int rt_pack_find_embedded(const char *path, uint64_t *at, bool *found, oc_error *e);

const rt_pack_header *rt_pack_header_of(const rt_pack *p);
int rt_pack_count(const rt_pack *p);
const rt_pack_section *rt_pack_section_at(const rt_pack *p, int i);
/* The loaded bytes of section i. */
const void *rt_pack_data(const rt_pack *p, int i);
/* The first section of a kind, or -1. */
int rt_pack_find(const rt_pack *p, rt_pack_kind kind);
/* The path given to rt_pack_open, for messages. */
const char *rt_pack_path(const rt_pack *p);

#endif
