/* The fuzz harnesses: each fuzz/<name>.c defines fuzz_<name>(data, size),
 * which sends one input through one loader and checks what must hold for any
 * input. Built with OLMOC_FUZZ_MAIN (make fuzz) it is also the binary's
 * LLVMFuzzerTestOneInput; in the normal build tests/test_fuzz_regressions.c
 * replays saved inputs through the same function. A harness returns 0; a
 * broken invariant is printed and aborts (harness code, not library code). */
#ifndef OLMOC_FUZZ_H
#define OLMOC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fuzz_safetensors(const uint8_t *data, size_t size);
int fuzz_quantized(const uint8_t *data, size_t size);
int fuzz_config(const uint8_t *data, size_t size);
int fuzz_tokenizer(const uint8_t *data, size_t size);
int fuzz_tokenizer_dolma2(const uint8_t *data, size_t size);
int fuzz_ir(const uint8_t *data, size_t size);
int fuzz_chat(const uint8_t *data, size_t size);
int fuzz_ir_passes(const uint8_t *data, size_t size);
int fuzz_program(const uint8_t *data, size_t size);

#ifdef OLMOC_FUZZ_MAIN
#define FUZZ_MAIN(fn)                                                   \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);         \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }
#else
#define FUZZ_MAIN(fn)
#endif

#define FUZZ_CHECK(cond, ...)                                           \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: fuzz invariant '%s' broken: ", __FILE__,  \
              __LINE__, #cond);                                         \
      fprintf(stderr, __VA_ARGS__);                                     \
      fputc('\n', stderr);                                              \
      abort();                                                          \
    }                                                                   \
  } while (0)

/* data[0, size) as a NUL-terminated string (cut at its first NUL, as a C
 * string reader sees it); NULL only when out of memory. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
  const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
  size_t n = nul ? (size_t)(nul - data) : size;
  char *s = malloc(n + 1);
  if (s) {
    if (n) memcpy(s, data, n);
    s[n] = '\0';
  }
  return s;
}

/* A private temporary directory (in memory when /dev/shm allows), made
 * once into dir[64] and removed at exit by `cleanup` (which also empties it),
 * for harnesses whose readers open files by path. */
static inline void fuzz_make_dir(char *dir, size_t n, void (*cleanup)(void)) {
  if (dir[0]) return;
  const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  snprintf(dir, n, "%s/olmoc-fuzz-XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
  FUZZ_CHECK(mkdtemp(dir), "cannot make a directory %s", dir);
  atexit(cleanup);
}

#endif
