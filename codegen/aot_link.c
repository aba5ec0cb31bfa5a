/* Linking a model binary with the system C compiler: in a scratch directory,
 * the kernels' object, a generated C file with the kernel table
 * (olmoc_aot_image, the layout of rt_aot_image in olmoc/aot.h) and the
 * archives the caller brings (the runtime, built into olmoc), then one `cc`
 * for the table and one for the link, the result copied into the caller's
 * output. Invariant: the scratch directory and everything written into it,
 * cc's own temporaries too ($TMPDIR is the scratch directory for cc), are
 * removed on every path out, and by the cleanup handler on a signal, which
 * first kills cc's process group (olmoc/cleanup.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "olmoc/alloc.h"
#include "olmoc/cleanup.h"
#include "olmoc/compile.h"

extern char **environ;

#define MAX_ARGS 64
#define MAX_FILES 16

typedef struct scratch {
  char dir[256];
  int cleanup;            /* dir's slot in the cleanup table */
  char env[300];          /* TMPDIR=dir, for cc */
  char *files[MAX_FILES]; /* the paths of what olmoc writes into dir */
  int n_files;
} scratch;

/* dir/name, freed with the scratch directory. */
static const char *scratch_path(scratch *s, const char *name, oc_error *e) {
  if (s->n_files == MAX_FILES)
    return oc_fail(e, "too many scratch files"), NULL;
  size_t n = strlen(s->dir) + strlen(name) + 2;
  char *p = oc_malloc(n);
  if (!p)
    return oc_fail(e, "out of memory"), NULL;
  snprintf(p, n, "%s/%s", s->dir, name);
  return s->files[s->n_files++] = p;
}

static void scratch_remove(scratch *s) {
  for (int i = 0; i < s->n_files; i++)
    free(s->files[i]);
  oc_remove_scratch(s->dir);
  oc_cleanup_drop(s->cleanup);
}

static int write_file(const char *path, const void *data, size_t n, oc_error *e) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
    int err = errno;
    if (f)
      fclose(f);
    return oc_fail(e, "%s: cannot write: %s", path, strerror(err));
  }
  return 0;
}

/* The command line as a person would type it, for messages. */
static void command_line(char *const *argv, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  for (int i = 0; argv[i] && at < n; i++)
    at += (size_t)snprintf(buf + at, n - at, strpbrk(argv[i], " '\"") ? "%s'%s'" : "%s%s",
                           i ? " " : "", argv[i]);
}

/* This process's environment with TMPDIR=s's directory, in a new array. */
static char **scratch_environ(scratch *s) {
  int n = 0;
  while (environ[n])
    n++;
  char **env = oc_malloc((size_t)(n + 2) * sizeof *env);
  if (!env)
    return NULL;
  int k = 0;
  for (int i = 0; i < n; i++)
    if (strncmp(environ[i], "TMPDIR=", 7))
      env[k++] = environ[i];
  snprintf(s->env, sizeof s->env, "TMPDIR=%s", s->dir);
  env[k++] = s->env;
  env[k] = NULL;
  return env;
}

/* Runs argv in a process group of its own, registered for the cleanup
 * handler to kill, its temporaries in s and its output in `log`; a failure
 * shows the command and the output. */
static int run(scratch *s, char *const *argv, const char *log, oc_error *e) {
  char **env = scratch_environ(s);
  if (!env)
    return oc_fail(e, "out of memory");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid;
  oc_cleanup_hold(); /* no signal between the child and its registration */
  int err = posix_spawnp(&pid, argv[0], &fa, &attr, argv, env), status = 0;
  int group = err ? 0 : oc_cleanup_add(OC_CLEANUP_GROUP, NULL, pid, e);
  if (group < 0) {
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  oc_cleanup_release();
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  char cmd[4096];
  command_line(argv, cmd, sizeof cmd);
  if (group < 0)
    return -1;
  if (err)
    return oc_fail(e, "cannot run the C compiler (%s): %s; olmoc compile links with `cc` or $CC",
                   cmd, strerror(err));
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  oc_cleanup_drop(group);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  char output[700] = "";
  FILE *f = fopen(log, "rb");
  if (f) {
    output[fread(output, 1, sizeof output - 1, f)] = '\0';
    fclose(f);
  }
  return oc_fail(e, "the link failed (%s %d): %s\n%s", WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), cmd, output);
}

/* Only what LLVM names CPUs, features and kernels with goes into C strings. */
static bool plain(const char *s) {
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.,") == strlen(s);
}

/* The kernel table as C: rt_aot_image's layout, declared here again because
 * the link happens wherever olmoc runs, without olmoc's headers; each
 * kernel's contract as the int64_t words it is made of. */
static int write_image(cg_jit *j, const cg_link *l, const char *path, oc_error *e) {
  rt_kernel_symbol *k;
  int n;
  if (cg_kernel_symbols(j, &k, &n, e))
    return -1;
  FILE *f = fopen(path, "w");
  int rc = f ? 0 : oc_fail(e, "%s: cannot write: %s", path, strerror(errno));
  if (!rc && (!plain(l->target->cpu) || !plain(l->target->features)))
    rc = oc_fail(e, "the target's name has characters olmoc does not expect");
  if (!rc) {
    fprintf(f, "/* Generated by olmoc compile: this model binary's kernels. */\n"
               "#define HIDDEN __attribute__((visibility(\"hidden\")))\n"
               "typedef struct { const char *name; void *fn; long long contract[%d]; } rt_kernel_symbol;\n"
               "typedef struct { unsigned long long build_id; const char *cpu, *features;\n"
               "                 const rt_kernel_symbol *kernels; int n_kernels; unsigned dtype; } rt_aot_image;\n",
            RT_CONTRACT_WORDS);
    for (int i = 0; i < n; i++)
      fprintf(f, "HIDDEN void %s(void);\n", k[i].name);
    fprintf(f, "static const rt_kernel_symbol kernels[] = {\n");
    for (int i = 0; i < n; i++) {
      int64_t words[RT_CONTRACT_WORDS];
      memcpy(words, &k[i].contract, sizeof words);
      fprintf(f, "  {\"%s\", (void *)%s, {", k[i].name, k[i].name);
      for (int w = 0; w < RT_CONTRACT_WORDS; w++)
        fprintf(f, "%s%lldll", w ? "," : "", (long long)words[w]);
      fprintf(f, "}},\n");
    }
    fprintf(f, "};\nHIDDEN const rt_aot_image olmoc_aot_image = {0x%016llxull, \"%s\", \"%s\", kernels, %d, %uu};\n",
            (unsigned long long)l->build_id, l->target->cpu, l->target->features, n, (unsigned)l->dtype);
  }
  if (f && fclose(f) && !rc)
    rc = oc_fail(e, "%s: cannot write: %s", path, strerror(errno));
  free(k);
  return rc;
}

/* argv[0..) from $CC or "cc", split at spaces into buf. */
static int compiler(const cg_link *l, char *buf, size_t n, char **argv, int *argc) {
  const char *cc = l->cc ? l->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
  snprintf(buf, n, "%s", cc);
  *argc = 0;
  for (char *tok = strtok(buf, " "); tok && *argc < 8; tok = strtok(NULL, " "))
    argv[(*argc)++] = tok;
  return *argc ? 0 : -1;
}

static int link_all(cg_jit *j, const cg_link *l, scratch *s, oc_error *e) {
  const char *object = scratch_path(s, "kernels.o", e), *image_c = scratch_path(s, "image.c", e);
  const char *image_o = scratch_path(s, "image.o", e), *log = scratch_path(s, "cc.log", e);
  const char *linked = scratch_path(s, "linked", e);
  if (!object || !image_c || !image_o || !log || !linked || cg_aot_emit_object(j, object, e) ||
      write_image(j, l, image_c, e))
    return -1;
  char cc_buf[256], *argv[MAX_ARGS];
  int n;
  if (compiler(l, cc_buf, sizeof cc_buf, argv, &n))
    return oc_fail(e, "$CC is empty");
  int base = n;
  const char *table[] = {"-c", "-fPIC", "-O2", "-o", image_o, image_c, NULL};
  for (int i = 0; table[i]; i++)
    argv[n++] = (char *)table[i];
  argv[n] = NULL;
  if (run(s, argv, log, e))
    return -1;
  n = base;
  if (l->shared)
    argv[n++] = "-shared";
  argv[n++] = "-o", argv[n++] = (char *)linked, argv[n++] = (char *)object, argv[n++] = (char *)image_o;
  if (l->shared)
    argv[n++] = "-Wl,-u,olmoc_open"; /* the C API, from the runtime archive */
  char excludes[MAX_FILES][128];
  for (int i = 0; i < l->n_archives && n < MAX_ARGS - 12; i++) {
    const char *path = scratch_path(s, l->archives[i].name, e);
    if (!path || write_file(path, l->archives[i].data, l->archives[i].size, e))
      return -1;
    argv[n++] = (char *)path;
    snprintf(excludes[i], sizeof excludes[i], "-Wl,--exclude-libs,%s", l->archives[i].name);
  }
  const char *tail[] = {"-fopenmp", "-lm", "-Wl,--gc-sections", NULL};
  for (int i = 0; tail[i]; i++)
    argv[n++] = (char *)tail[i];
  if (l->shared) {
    argv[n++] = "-Wl,--no-undefined";
    for (int i = 1; i < l->n_archives; i++) /* only the runtime's API is exported */
      argv[n++] = excludes[i];
  }
  argv[n] = NULL;
  return run(s, argv, log, e) || rt_output_copy_into(l->output, linked, e) ? -1 : 0;
}

int cg_aot_link(cg_jit *j, const cg_link *l, oc_error *e) {
  if (l->n_archives > MAX_FILES - 5)
    return oc_fail(e, "too many archives to link");
  scratch s = {.n_files = 0};
  const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  if (snprintf(s.dir, sizeof s.dir, "%s/olmoc-compile-XXXXXX", tmp) >= (int)sizeof s.dir)
    return oc_fail(e, "$TMPDIR %s: path too long for a scratch directory", tmp);
  oc_cleanup_hold(); /* no signal between the directory and its registration */
  int made = mkdtemp(s.dir) != NULL, err = errno;
  if (made && (s.cleanup = oc_cleanup_add(OC_CLEANUP_SCRATCH, s.dir, 0, e)) < 0)
    rmdir(s.dir);
  oc_cleanup_release();
  if (!made)
    return oc_fail(e, "cannot make a scratch directory %s: %s", s.dir, strerror(err));
  if (s.cleanup < 0)
    return -1;
  int rc = link_all(j, l, &s, e);
  scratch_remove(&s);
  return rc ? oc_wrap(e, "linking %s", l->output->path) : 0;
}
