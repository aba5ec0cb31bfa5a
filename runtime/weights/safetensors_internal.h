/* Shared by open_checkpoint.c (which files), safetensors.c (files, headers,
 * lookups) and safetensors_index.c (sharded checkpoints): the layout of
 * rt_weights.
 * Tensors are stored file by file, each file's in offset order; by_name is
 * the same tensors sorted by name, built once every file is parsed. */
#ifndef OLMOC_RUNTIME_SAFETENSORS_INTERNAL_H
#define OLMOC_RUNTIME_SAFETENSORS_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "olmoc/pack.h"
#include "olmoc/weights.h"

typedef struct st_file {
  char *path;
  const unsigned char *map; /* [size], read-only private mapping (of the file, or of
                             * anonymous memory it was read into), or NULL */
  size_t size;
} st_file;

struct rt_weights {
  char *path;          /* as given to rt_weights_open, for messages */
  st_file *files;      /* [nfiles], files_cap allocated */
  int nfiles, files_cap;
  rt_tensor *tensors;  /* [n], cap allocated */
  int n, cap;
  rt_tensor **by_name; /* [n], sorted by name */
  bool read;           /* files read into anonymous memory, not mapped */
  rt_pack *pack;       /* a quantized checkpoint's model.olmoc (quantized_read.c), or NULL */
  rt_quantized quantized;
};

/* Maps (or, w->read, reads) path as w->files[w->nfiles] (which must be
 * allocated); the entry is owned by w (and counted) even when that fails. */
int st_map(rt_weights *w, const char *path, oc_error *e);
/* Validates the header of w->files[file] and appends its tensors to w. */
int st_parse(rt_weights *w, int file, oc_error *e);
/* Builds w->by_name; fails on a duplicate name. */
int st_index_names(rt_weights *w, oc_error *e);
/* Opens the shards an index lists and checks them against it. */
int st_open_index(rt_weights *w, const char *index_path, oc_error *e);

/* Opens a quantized checkpoint's model.olmoc (quantized_read.c). */
int st_open_quantized(rt_weights *w, const char *path, oc_error *e);

/* A new tensor entry of w, zeroed but for file = path (-1: out of memory). */
int st_add_tensor(rt_weights *w, rt_tensor **out, const char *path);
/* NULL if j is a JSON number holding a non-negative integer we can represent
 * exactly, else what is wrong with it. */
const char *st_as_count(const cJSON *j, uint64_t *out);
char *st_join(const char *dir, const char *name); /* malloc'ed "dir/name" */

#endif
