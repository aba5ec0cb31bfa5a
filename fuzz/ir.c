/* fuzz_ir: the IR text parser and verifier (ir/parse.c, ir/verify.c). The
 * input is IR text (cut at its first NUL). Checks: parse fails with a message
 * or gives a graph whose printed form parses again and prints the same bytes
 * (print(parse(print(g))) == print(g), ir_text.h); a graph the verifier
 * accepts can also be summarized and exported as DOT, whole and its layer 0. */
#include "fuzz.h"

#include "olmoc/ir_text.h"

static FILE *null_out(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

int fuzz_ir(const uint8_t *data, size_t size) {
  char *text = fuzz_cstring(data, size);
  if (!text) return 0;
  oc_error e = {{0}};
  ir_graph *g = NULL;
  if (ir_parse(text, "fuzz.ir", &g, &e) != 0) {
    FUZZ_CHECK(e.msg[0], "ir_parse failed without a message");
    free(text);
    return 0;
  }
  free(text);

  char *printed = ir_print_string(g);
  FUZZ_CHECK(printed, "ir_print_string failed");
  ir_graph *again = NULL;
  if (ir_parse(printed, "printed.ir", &again, &e) != 0)
    FUZZ_CHECK(0, "the printed graph does not parse: %s\n%s", e.msg, printed);
  char *reprinted = ir_print_string(again);
  FUZZ_CHECK(reprinted && strcmp(printed, reprinted) == 0,
             "print(parse(print(g))) differs from print(g):\n%s\n---\n%s", printed,
             reprinted ? reprinted : "(null)");

  e.msg[0] = '\0';
  if (ir_verify(g, &e) == 0) {
    FILE *out = null_out();
    FUZZ_CHECK(out, "cannot open /dev/null");
    ir_print_summary(g, out);
    FUZZ_CHECK(ir_print_dot(g, -1, out, &e) == 0, "DOT export of a verified graph: %s", e.msg);
    oc_error e2 = {{0}};
    if (ir_print_dot(g, 0, out, &e2) != 0) /* layer 0 alone, or why not */
      FUZZ_CHECK(e2.msg[0], "DOT export of layer 0 failed without a message");
    FUZZ_CHECK(ir_verify(again, &e2) == 0, "the reparsed graph does not verify: %s", e2.msg);
  } else {
    FUZZ_CHECK(e.msg[0], "ir_verify failed without a message");
  }
  free(printed);
  free(reprinted);
  ir_graph_free(again);
  ir_graph_free(g);
  return 0;
}

FUZZ_MAIN(fuzz_ir)
