/* Interactive chat on a pseudo-terminal, as a person would use it, for
 * `olmoc run --chat` and a compiled model binary alike: the banner, /help,
 * an unknown command, /clear (the reply again is the first reply, greedy),
 * /system, Ctrl-C at the prompt, a context so small (64) that it fills and
 * the oldest turns go (said once, the chat goes on), a message too long even
 * alone, /exit and Ctrl-D (exit status 0). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <time.h>

#include "cli_harness.h"

typedef struct terminal {
  pid_t pid;
  int fd;          /* the master side */
  char text[1 << 18]; /* everything the program wrote */
  size_t len, mark; /* mark: where the current step's output starts */
  size_t seen;      /* the end of the last output expected */
} terminal;

static terminal term;

/* Starts argv on a new terminal (TERM=dumb: no escape sequences to read past). */
static void start(char *const *argv) {
  term.len = term.mark = term.seen = 0;
  term.pid = forkpty(&term.fd, NULL, NULL, NULL);
  assert_true(term.pid >= 0);
  if (term.pid == 0) {
    setenv("TERM", "dumb", 1);
    execv(argv[0], argv);
    _exit(127);
  }
}

/* Reads until `what` is in the output from `from` on; a guard of two
 * minutes against a hang, not a timing check. */
static const char *expect_from(size_t from, const char *what) {
  for (time_t end = time(NULL) + 120; time(NULL) < end;) {
    term.text[term.len] = '\0';
    const char *at = strstr(term.text + from, what);
    if (at) {
      term.seen = (size_t)(at - term.text) + strlen(what);
      return at;
    }
    struct pollfd p = {term.fd, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0)
      continue;
    ssize_t n = read(term.fd, term.text + term.len, sizeof term.text - 1 - term.len);
    if (n <= 0 && errno != EINTR)
      break;
    term.len += n > 0 ? (size_t)n : 0;
  }
  fail_msg("the terminal never showed \"%s\"; it shows:\n%s", what, term.text);
  return NULL;
}

/* ... in the output of the current step. */
static const char *expect(const char *what) { return expect_from(term.mark, what); }

/* Waits for the prompt after what was last expected, lets the line editor
 * take the terminal, and types. */
static void type(const char *keys) {
  expect_from(term.seen, "> ");
  struct timespec settle = {0, 100 * 1000 * 1000};
  nanosleep(&settle, NULL);
  term.mark = term.len;
  assert_int_equal(write(term.fd, keys, strlen(keys)), (ssize_t)strlen(keys));
}

/* Types a line, waits for its reply and returns it (malloc'ed): the text
 * between the echo of the line and the timings. */
static char *say(const char *line) {
  char keys[4096];
  snprintf(keys, sizeof keys, "%s\n", line);
  type(keys);
  const char *timings = expect("\r\n\r\nprompt: ");
  expect("stop: ");
  char echo[4096];
  snprintf(echo, sizeof echo, "%s\r\n", strrchr(line, '\x03') ? strrchr(line, '\x03') + 1 : line);
  const char *start = NULL;
  for (const char *p = term.text + term.mark; (p = strstr(p, echo)) && p < timings; p++)
    start = p + strlen(echo);
  if (!start)
    fail_msg("no echo of \"%s\":\n%s", line, term.text + term.mark);
  char *reply = strndup(start, (size_t)(timings - start));
  assert_non_null(reply);
  return reply;
}

static int finish(void) {
  int status;
  for (;;) { /* drain, so the program never blocks writing */
    char buf[4096];
    struct pollfd p = {term.fd, POLLIN, 0};
    if (poll(&p, 1, 120000) <= 0 || read(term.fd, buf, sizeof buf) <= 0)
      break;
  }
  assert_int_equal(waitpid(term.pid, &status, 0), term.pid);
  close(term.fd);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)); p++)
    n++;
  return n;
}

static void chat_session(char *const *argv) {
  start(argv);
  expect("olmoc chat: /help for commands, /exit or Ctrl-D to leave");
  char *first = say("Hello");
  assert_true(strlen(first) > 0);
  type("/help\n");
  expect("/system TEXT");
  expect("/clear");
  expect("/exit");
  type("/x\n");
  expect("unknown command '/x': /help lists the commands");
  type("/clear\n");
  expect("(a new conversation)");
  char *again = say("Hello");
  assert_string_equal(again, first); /* greedy from an empty cache, as the first time */
  free(again);
  /* Ctrl-C at the prompt clears the line typed so far */
  type("/clear\n");
  expect("(a new conversation)");
  again = say("never sent\x03Hello");
  assert_string_equal(again, first);
  free(again);
  type("/system Answer in one word.\n");
  expect("(system message set: a new conversation)");
  free(say("Hello"));
  /* turns until the context (64 positions, 8 a reply) is full, then more */
  int turns = 0;
  while (!strstr(term.text, "(the context is full") && turns < 10)
    free(say("Tell me more about it")), turns++;
  assert_true(turns >= 1 && turns < 10);
  free(say("And then"));
  free(say("Why"));
  assert_int_equal(count(term.text, "(the context is full"), 1);
  assert_int_equal(count(term.text, "stop: "), turns + 6);
  /* a message the context cannot hold even alone: said, and the chat goes on */
  char long_line[1024] = "";
  for (int i = 0; i < 40; i++)
    strcat(long_line, "word after word ");
  type(strcat(long_line, "\n"));
  expect("more than the context's 64: not sent)");
  type("/system\n");
  expect("(no system message: a new conversation)");
  again = say("Hello");
  assert_string_equal(again, first);
  free(again);
  type("/exit\n");
  assert_int_equal(finish(), 0);
  free(first);

  start(argv);
  type("\x04"); /* Ctrl-D on an empty line */
  assert_int_equal(finish(), 0);
}

static char *const run_argv[] = {OLMOC_BUILD_DIR "/olmoc", "run", "--chat-template", "olmo2", "-n", "8",
                                 "--temp", "0", "--ctx", "64", "-t", "1", NULL};

static void test_olmoc_run(void **state) {
  (void)state;
  chat_session(run_argv);
}

static void test_model_binary(void **state) {
  (void)state;
  char args[600], binary[512];
  snprintf(binary, sizeof binary, "%s/tiny", tmpdir);
  snprintf(args, sizeof args, "compile -o %s", binary);
  assert_int_equal(olmoc(args), 0);
  char *const argv[] = {binary, "--chat-template", "olmo2", "-n", "8", "--temp", "0", "-c", "64", "-t", "1", NULL};
  chat_session(argv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_olmoc_run),
      cmocka_unit_test(test_model_binary),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
