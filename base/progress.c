/* Steps reported to a sink, and the one sink that draws them (a bar redrawn
 * in place on a terminal, plain lines elsewhere). Invariant: a NULL sink
 * makes every call here a no-op, and a bar prints nothing for a step that
 * ends within its delay, so quick steps, pipes and tests stay clean. */
#include <stdlib.h>
#include <unistd.h>

#include "olmoc/clock.h"
#include "olmoc/progress.h"

#define BAR 20 /* characters of the terminal's bar */

static void report(oc_step *s, oc_step_event ev) {
  if (s->sink)
    s->sink->report(s->sink->state, s, ev);
}

void oc_step_begin(oc_step *s, const oc_progress *sink, const char *what, int64_t total, const char *unit,
                   const char *rate_unit) {
  *s = (oc_step){.sink = sink, .what = what, .unit = unit, .rate_unit = rate_unit, .total = total};
  report(s, OC_STEP_BEGIN);
}

void oc_step_add(oc_step *s, int64_t n, double amount) {
  s->done += n;
  s->amount += amount;
  report(s, OC_STEP_UPDATE);
}

void oc_step_end(oc_step *s) { report(s, OC_STEP_END); }

/* "1.2 GB/s", "812.3 tok/s" over t seconds, or "" without a rate. */
static void rate_text(const oc_step *s, double t, char *buf, size_t n) {
  buf[0] = '\0';
  if (!s->rate_unit || t <= 0)
    return;
  double r = s->amount / t;
  if (s->rate_unit[0] != 'B')
    snprintf(buf, n, "%.1f %s/s", r, s->rate_unit);
  else
    snprintf(buf, n, "%.1f %s/s", r >= 1e9 ? r / 1e9 : r >= 1e6 ? r / 1e6 : r / 1e3,
             r >= 1e9 ? "GB" : r >= 1e6 ? "MB" : "kB");
}

static void draw(oc_progress_bar *b, const oc_step *s, double now, bool final) {
  double t = now - b->start;
  char rate[32], extra[128];
  rate_text(s, t, rate, sizeof rate);
  snprintf(extra, sizeof extra, "%s%s%s%s%.1f s", s->note, s->note[0] ? ", " : "", rate, rate[0] ? ", " : "", t);
  if (!b->terminal) {
    fprintf(b->out, "%s [%lld/%lld %s] %s\n", s->what, (long long)s->done, (long long)s->total, s->unit, extra);
  } else {
    int64_t filled = s->total > 0 ? s->done * BAR / s->total : BAR;
    filled = filled < 0 ? 0 : filled > BAR ? BAR : filled;
    char bar[BAR + 1];
    for (int i = 0; i < BAR; i++)
      bar[i] = i < filled ? '#' : '-';
    bar[BAR] = '\0';
    /* \033[K clears what a longer line drawn before left */
    fprintf(b->out, "\r%s [%s] %lld/%lld %s, %s\033[K%s", s->what, bar, (long long)s->done,
            (long long)s->total, s->unit, extra, final ? "\n" : "");
  }
  fflush(b->out);
  b->last = now;
  b->drawn = true;
  b->drawn_done = s->done;
}

static void bar_report(void *state, const oc_step *s, oc_step_event ev) {
  oc_progress_bar *b = state;
  double now = b->clock();
  if (ev == OC_STEP_BEGIN) {
    b->start = b->last = now;
    b->drawn = false;
    return;
  }
  bool due = now - b->start >= b->delay;
  if (ev == OC_STEP_END) { /* a terminal's line still needs its newline */
    if (b->drawn ? b->terminal || b->drawn_done != s->done : due)
      draw(b, s, now, true);
    return;
  }
  double gap = b->terminal ? b->every / 20 : b->every;
  if (due && (!b->drawn || now - b->last >= gap))
    draw(b, s, now, false);
}

const oc_progress *oc_progress_bar_init(oc_progress_bar *b, FILE *out, bool terminal, double delay,
                                        double (*clock)(void)) {
  *b = (oc_progress_bar){.sink = {bar_report, b}, .out = out, .terminal = terminal, .delay = delay,
                         .every = 2.0, .clock = clock};
  return &b->sink;
}

const oc_progress *oc_progress_stderr(oc_progress_bar *b, bool quiet) {
  if (quiet)
    return NULL;
  const char *env = getenv("OLMOC_PROGRESS_DELAY");
  char *end = NULL;
  double delay = env ? strtod(env, &end) : OC_PROGRESS_DELAY;
  if (!env || end == env || *end || !(delay >= 0))
    delay = OC_PROGRESS_DELAY;
  return oc_progress_bar_init(b, stderr, isatty(STDERR_FILENO), delay, rt_seconds);
}
