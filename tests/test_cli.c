/* The olmoc command end to end: run it as a user would and check exit codes,
 * output files and messages. */
#include <math.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli_harness.h"
#include "olmoc/weights.h"

static void test_help(void **state) {
  (void)state;
  assert_int_equal(olmoc("--help"), 0);
  expect_output("usage: olmoc <command>");
  assert_int_equal(olmoc("ir --help"), 0);
  expect_output("--emit KIND");
  assert_int_equal(olmoc("frobnicate"), 2);
  expect_output("unknown command 'frobnicate'");
  assert_int_equal(olmoc(""), 2);
}

/* The 13B graph printed, parsed back and printed again is the same text. */
static void test_13b_round_trip(void **state) {
  (void)state;
  char args[512];
  snprintf(args, sizeof args, "ir -m models/olmo2-13b -O0 -o %s/a.ir", tmpdir);
  assert_int_equal(olmoc(args), 0);
  snprintf(args, sizeof args, "ir %s/a.ir -o %s/b.ir", tmpdir, tmpdir);
  assert_int_equal(olmoc(args), 0);
  char a[256], b[256];
  snprintf(a, sizeof a, "%s/a.ir", tmpdir);
  snprintf(b, sizeof b, "%s/b.ir", tmpdir);
  size_t na, nb;
  char *ta = slurp(a, &na), *tb = slurp(b, &nb);
  assert_true(na > 100000);
  assert_int_equal(na, nb);
  assert_memory_equal(ta, tb, na);
  assert_non_null(strstr(ta, "\"model.layers.39.mlp.down_proj.weight\""));
  free(ta);
  free(tb);
}

static void test_summary_and_dot(void **state) {
  (void)state;
  assert_int_equal(olmoc("ir -m models/olmo2-1b -O0 --emit summary"), 0);
  expect_output("parameters       1484916736 (1.48 B) in 179 weights");
  expect_output("nodes            1268 in 16 layers");
  assert_int_equal(olmoc("ir -m models/olmo2-32b/config.json --emit dot --layer 63"), 0);
  expect_output("digraph");
  expect_output("label=\"layer 63\"");
  expect_output("self_attn.q_proj");
  assert_int_equal(olmoc("ir -m models/olmo2-1b --emit dot --layer 16"), 1);
  expect_output("no layer 16");
}

static void test_bad_input(void **state) {
  (void)state;
  assert_int_equal(olmoc("ir -m /nonexistent/model"), 1);
  expect_output("/nonexistent/model");
  assert_int_equal(olmoc("ir -m models/olmo2-1b --emit pdf"), 2);
  expect_output("--emit: expected text, dot or summary, found 'pdf'");
  assert_int_equal(olmoc("ir -m models/olmo2-1b --layer 2"), 2);
  expect_output("--layer goes with --emit dot");
  assert_int_equal(olmoc("ir -m models/olmo2-1b --layer x --emit dot"), 2);
  expect_output("--layer: expected an integer");
  assert_int_equal(olmoc("ir -m"), 2);
  expect_output("option '-m' needs a value");
  assert_int_equal(olmoc("ir"), 2);
  expect_output("give either -m MODEL or one .ir file");
  assert_int_equal(olmoc("ir tests/data/tiny/config.json"), 1);
  expect_output("tests/data/tiny/config.json:1:1:");
}

/* A write that fails leaves no file behind and says why; a device is written
 * in place, never replaced by a renamed file. */
static void test_failed_write(void **state) {
  (void)state;
  assert_int_equal(olmoc("ir -m models/olmo2-1b -o /dev/null/sub/g.ir"), 1);
  expect_output("/dev/null/sub/g.ir: cannot create: Not a directory");
  assert_int_equal(olmoc("ir -m models/olmo2-1b -o /dev/full"), 1);
  expect_output("/dev/full: cannot write: No space left on device");
  struct stat st;
  assert_int_equal(stat("/dev/full", &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_int_equal(olmoc("ir -m models/olmo2-1b --emit summary -o /dev/stdout"), 0);
  expect_output("1.48 B");
  assert_int_equal(lstat("/dev/stdout", &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  char args[512];
  snprintf(args, sizeof args, "ir -m models/olmo2-1b -o %s/g.ir", tmpdir);
  assert_int_equal(olmoc(args), 0);
  snprintf(args, sizeof args, "ls -a %s > %s/ls", tmpdir, tmpdir);
  assert_int_equal(system(args), 0);
  snprintf(args, sizeof args, "%s/ls", tmpdir);
  size_t n;
  char *listing = slurp(args, &n);
  assert_null(strstr(listing, ".tmp.")); /* no temporary left behind */
  free(listing);
}

/* logits --backend interp writes the interpreter's f32 logits as .npy: they
 * match PyTorch's. */
static void test_logits_npy(void **state) {
  (void)state;
  char args[512], path[256];
  snprintf(path, sizeof path, "%s/l.npy", tmpdir);
  snprintf(args, sizeof args, "logits -m tests/data/tiny --backend interp --ids 104,59,101,250,152,19,148 -o %s", path);
  assert_int_equal(olmoc(args), 0);
  expect_output("f32[7,256]");
  size_t n;
  char *npy = slurp(path, &n);
  assert_memory_equal(npy, "\x93NUMPY\x01\x00", 8);
  size_t header = 10 + (size_t)(unsigned char)npy[8] + 256u * (unsigned char)npy[9];
  assert_int_equal(header % 64, 0);
  assert_non_null(strstr(npy + 10, "'shape': (7, 256)"));
  assert_int_equal(n, header + 7 * 256 * sizeof(float));

  rt_weights *golden;
  oc_error e;
  assert_int_equal(rt_weights_open("tests/data/tiny/golden.safetensors", &golden, &e), 0);
  const float *want = rt_weights_find(golden, "prefill_logits")->data;
  float got, worst = 0;
  for (size_t i = 0; i < 7 * 256; i++) {
    memcpy(&got, npy + header + 4 * i, 4);
    worst = fmaxf(worst, fabsf(got - want[i]));
  }
  assert_true(worst <= 1e-4f);
  rt_weights_close(golden);

  /* the pipeline changes no bit of the logits: -O0, -O2 (on the planned arena), a list */
  const char *pipelines[] = {"-O0", "-O1", "--passes=fuse-rmsnorm,fuse-attention", "--passes dce"};
  for (int i = 0; i < 4; i++) {
    char other[256];
    snprintf(other, sizeof other, "%s/o.npy", tmpdir);
    snprintf(args, sizeof args, "logits -m tests/data/tiny --backend interp %s --ids 104,59,101,250,152,19,148 -o %s",
             pipelines[i], other);
    assert_int_equal(olmoc(args), 0);
    size_t m;
    char *again = slurp(other, &m);
    assert_int_equal(m, n);
    assert_memory_equal(again, npy, n);
    free(again);
  }
  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp -O0 -O2 --ids 1 -o /dev/null"), 1);
  expect_output("give one of -O0, -O1, -O2 and --passes");
  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp --passes=nope --ids 1 -o /dev/null"), 1);
  expect_output("nope");
  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp -O2=x --ids 1 -o /dev/null"), 2);

  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp --ids 1,2,256 -o /dev/null"), 1);
  expect_output("token id 256 is outside the model's vocabulary of 256");
  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp --ids 1,,2 -o /dev/null"), 1);
  expect_output("entry 2 of '1,,2' is not a token id");
  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp --ids 1"), 2);
  expect_output("-o FILE.npy is required");
  free(npy);
}

/* `olmoc checkpoint` streams each tensor: a tied embedding of 256 MiB (2^20
 * tokens by 64) is written with far less resident memory than the tensor
 * (it once held the largest tensor whole: 305 MiB here, 57 MiB after). */
static void test_checkpoint_streams(void **state) {
  (void)state;
  char config[300], dir[300], cmd[1200];
  snprintf(config, sizeof config, "%s/wide", tmpdir);
  snprintf(dir, sizeof dir, "%s/wide-ckpt", tmpdir);
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s && sed -e 's/\"vocab_size\": *[0-9]*/\"vocab_size\": 1048576/' "
           "-e 's/\"tie_word_embeddings\": *false/\"tie_word_embeddings\": true/' "
           "tests/data/tiny/config.json >%s/config.json && grep -q '\"vocab_size\": 1048576' %s/config.json",
           config, config, config);
  assert_int_equal(system(cmd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl(OLMOC_BUILD_DIR "/olmoc", "olmoc", "checkpoint", "-q", "-m", config, "-o", dir, "--shards", "1",
          (char *)NULL);
    _exit(99);
  }
  int status;
  struct rusage use;
  assert_int_equal(wait4(pid, &status, 0, &use), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  snprintf(cmd, sizeof cmd, "%s/model.safetensors", dir);
  struct stat st;
  assert_int_equal(stat(cmd, &st), 0);
  assert_true(st.st_size > (256 << 20));
  if (use.ru_maxrss > 160 * 1024) /* KiB */
    fail_msg("olmoc checkpoint held %ld MiB to write a 256 MiB tensor", use.ru_maxrss / 1024);
  snprintf(cmd, sizeof cmd, "rm -r %s %s", config, dir);
  assert_int_equal(system(cmd), 0);
}

/* A checkpoint in the published layout (two f32 shards, an index, the dolma2
 * tokenizer), written by `olmoc checkpoint`, loads and generates. */
static void test_published_layout(void **state) {
  (void)state;
  char args[1024], dir[256];
  snprintf(dir, sizeof dir, "%s/ckpt", tmpdir);
  snprintf(args, sizeof args,
           "checkpoint -m tests/data/dolma-tiny -o %s --shards 2 --tokenizer models/olmo2-tokenizer/tokenizer.json",
           dir);
  assert_int_equal(olmoc(args), 0);
  snprintf(args, sizeof args, "%s/model.safetensors.index.json", dir);
  size_t n;
  char *index = slurp(args, &n);
  assert_non_null(strstr(index, "\"model-00001-of-00002.safetensors\""));
  assert_non_null(strstr(index, "\"model-00002-of-00002.safetensors\""));
  free(index);

  snprintf(args, sizeof args, "tokenize -m %s --ids-only \"Language modeling is\"", dir);
  assert_int_equal(olmoc(args), 0);
  assert_string_equal(out, "14126,34579,374\n");
  snprintf(args, sizeof args, "run -m %s -p \"Language modeling is\" -n 5 --temp 0", dir);
  assert_int_equal(olmoc(args), 0);
  expect_output("Language modeling is");
  expect_output("prompt: 3 tokens");
  expect_output("generation: 5 tokens");
  expect_output("stop: token limit");
  /* greedy is deterministic */
  char *greedy = strdup(out);
  assert_int_equal(olmoc(args), 0);
  assert_memory_equal(out, greedy, strcspn(greedy, "\n"));
  free(greedy);

  snprintf(args, sizeof args, "run -m %s -p \"Language modeling is\" --ctx 2", dir);
  assert_int_equal(olmoc(args), 1);
  expect_output("the prompt is 3 tokens but the context holds 2 positions");
  snprintf(args, sizeof args, "run -m %s -p x --ctx 100000", dir);
  assert_int_equal(olmoc(args), 1);
  expect_output("exceeds the model's 128");
  snprintf(args, sizeof args, "run -m %s -p x --chat", dir);
  assert_int_equal(olmoc(args), 1);
  expect_output("tokenizer_config.json");
  snprintf(args, sizeof args, "run -m %s -p Hello --chat-template olmo2 -n 3 --seed 7 --temp 1", dir);
  assert_int_equal(olmoc(args), 0);
  expect_output("generation: 3 tokens");
  /* interactive chat on a terminal (script gives it one): two turns on one
   * KV cache, the second feeding only what the cache does not hold. It ends
   * with /exit: the ^D script sends at the end of its input is lost when it
   * arrives while the line editor is not reading (the terminal is cooked). */
  snprintf(args, sizeof args,
           "printf 'Hello\\nAgain\\n/exit\\n' | timeout 120 script -qec '%s/olmoc run -m %s --chat-template olmo2 -n 3 "
           "--temp 0' /dev/null > %s/log 2>&1",
           OLMOC_BUILD_DIR, dir, tmpdir);
  assert_int_equal(system(args), 0);
  snprintf(args, sizeof args, "%s/log", tmpdir);
  char *chat = slurp(args, &n);
  char *first = strstr(chat, "prompt: 13 tokens"), *second = first ? strstr(first + 1, "prompt: ") : NULL;
  assert_non_null(first);
  assert_non_null(second);
  assert_true(atoi(second + 8) < 20); /* the whole conversation is 30 tokens */
  free(chat);

  snprintf(args, sizeof args, "run -m %s -p x --temp hot", dir);
  assert_int_equal(olmoc(args), 2);
  expect_output("--temp: expected a number");
}

/* Ctrl-C during generation stops it after the token in flight: the text so
 * far (a prefix of the uninterrupted greedy text), then the timings, and exit
 * status 130. The interpreter takes seconds for the bundled model's 400
 * tokens, far longer than the signal takes: it is sent once 40 bytes are out. */
static void test_interrupt(void **state) {
  (void)state;
  const char *run = "run --backend interp -t 1 --temp 0 -n 400 -p 'Language modeling is '";
  char cmd[2048], path[512];
  assert_int_equal(olmoc("run --backend interp -t 1 --temp 0 -n 100 -p 'Language modeling is '"), 0);
  char *full = strdup(out); /* 100 tokens, then the timings */
  assert_non_null(full);
  snprintf(cmd, sizeof cmd,
           "cd %s && { : >text; %s/olmoc %s >text 2>log & pid=$!; "
           "while kill -0 $pid 2>/dev/null && [ $(wc -c <text) -le 40 ]; do sleep 0.01; done; "
           "kill -INT $pid; wait $pid; echo $? >status; }",
           tmpdir, OLMOC_BUILD_DIR, run);
  assert_int_equal(system(cmd), 0);
  size_t n, text_len;
  snprintf(path, sizeof path, "%s/status", tmpdir);
  char *status = slurp(path, &n);
  snprintf(path, sizeof path, "%s/log", tmpdir);
  char *log = slurp(path, &n);
  snprintf(path, sizeof path, "%s/text", tmpdir);
  char *text = slurp(path, &text_len);
  if (atoi(status) != 130 || !strstr(log, "stop: interrupted") || !strstr(log, "generation: "))
    fail_msg("after Ctrl-C: exit status %d, and on standard error:\n%s", atoi(status), log);
  assert_true(text_len > 40 && text_len < strlen(full));
  assert_memory_equal(text, full, text_len);
  free(status), free(log), free(text), free(full);
}

/* The mistakes people make every day: each gets its one line and the exit
 * code of its kind, never the whole help. */
static void test_everyday_mistakes(void **state) {
  (void)state;
  assert_int_equal(olmoc("version --frob"), 2);
  assert_string_equal(out, "olmoc version: unknown option '--frob'\nsee `olmoc version --help` for the options\n");
  assert_int_equal(olmoc("run --frob"), 2);
  assert_string_equal(out, "olmoc run: unknown option '--frob'\nsee `olmoc run --help` for the options\n");
  assert_int_equal(olmoc("ir -m"), 2);
  assert_string_equal(out, "olmoc ir: option '-m' needs a value\nsee `olmoc ir --help` for the options\n");
  assert_int_equal(olmoc("frobnicate"), 2);
  assert_string_equal(out, "olmoc: unknown command 'frobnicate'\nsee `olmoc --help` for the commands\n");
  assert_int_equal(olmoc("version"), 0);
  expect_output("olmoc 0.1 (LLVM 19");

  assert_int_equal(olmoc("run -m models/olmo2-tiny/config.json -p hi"), 1);
  expect_output("models/olmo2-tiny/config.json: a checkpoint is a directory (config.json, tokenizer.json and "
                "the weights): give -m models/olmo2-tiny");
  assert_int_equal(olmoc("compile -m models/olmo2-tiny/model.safetensors -o /dev/null/x"), 1);
  expect_output("give -m models/olmo2-tiny");
  assert_int_equal(olmoc("logits -m /nonexistent/model --ids 1 -o /dev/null"), 1);
  expect_output("/nonexistent/model: cannot open the checkpoint directory: No such file or directory");

  /* the interpreter has one thread: asking for more is refused, not ignored */
  assert_int_equal(olmoc("run -t 2 --backend interp -p hi -n 1"), 1);
  expect_output("-t 2: the interpreter runs on one thread (-t sets the JIT's): add --backend jit");
  /* more threads than processors: the processors, and a warning saying so */
  char args[256], warning[256];
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  assert_int_equal(olmoc("run -t 1000 -p hi -n 1 --temp 0"), 0);
  snprintf(warning, sizeof warning, "olmoc run: warning: -t 1000: this machine runs %ld threads at once; using %ld",
           cores, cores);
  expect_output(warning);
  snprintf(args, sizeof args, "run -t %ld -p hi -n 1 --temp 0", cores);
  assert_int_equal(olmoc(args), 0);
  assert_null(strstr(out, "warning"));
}

static void test_bad_commands(void **state) {
  (void)state;
  assert_int_equal(olmoc("tokenize -m tests/data/tiny x"), 1);
  expect_output("tests/data/tiny");
  assert_int_equal(olmoc("tokenize"), 2);
  expect_output("give either TEXT or -f FILE");
  assert_int_equal(olmoc("perplexity -m tests/data/tiny"), 2);
  expect_output("-f FILE is required");
  assert_int_equal(olmoc("perplexity -m tests/data/tiny -f /nonexistent.txt"), 1);
  expect_output("/nonexistent.txt: cannot open");
  assert_int_equal(olmoc("checkpoint -m tests/data/tiny"), 2);
  expect_output("-m MODEL and -o DIR are required");
  assert_int_equal(olmoc("checkpoint -m /nonexistent -o /tmp/x"), 1);
  expect_output("/nonexistent");
  assert_int_equal(olmoc("run -m /nonexistent -p hi"), 1);
  expect_output("/nonexistent");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_13b_round_trip),
      cmocka_unit_test(test_summary_and_dot),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_failed_write),
      cmocka_unit_test(test_logits_npy),
      cmocka_unit_test(test_published_layout),
      cmocka_unit_test(test_checkpoint_streams),
      cmocka_unit_test(test_interrupt),
      cmocka_unit_test(test_bad_commands),
      cmocka_unit_test(test_everyday_mistakes),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
