/* Progress of the long steps (packing weights, compiling kernels, writing
 * files, perplexity windows). Library code reports a step's counts to the
 * sink it is handed, NULL meaning silence, so nothing prints unless a front
 * end asked; front ends make the one sink that draws on standard error
 * (oc_progress_stderr). The sink is called from one thread at a time: a
 * step advanced from several threads advances under a lock its caller holds. */
#ifndef OLMOC_PROGRESS_H
#define OLMOC_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct oc_step oc_step;

typedef enum oc_step_event { OC_STEP_BEGIN, OC_STEP_UPDATE, OC_STEP_END } oc_step_event;

/* Where steps report. */
typedef struct oc_progress {
  void (*report)(void *state, const oc_step *s, oc_step_event ev);
  void *state;
} oc_progress;

/* One step: done of total units ("112 of 160 tensors"), amount of rate_unit
 * so far for a rate ("B": bytes, drawn as MB/s or GB/s; "tok": tok/s; NULL:
 * no rate), and a note the caller may rewrite before each oc_step_add (a
 * running figure; "" for none). */
struct oc_step {
  const oc_progress *sink; /* NULL: the step is silent */
  const char *what, *unit, *rate_unit;
  int64_t done, total;
  double amount;
  char note[32];
};

/* s begins (reported at once) with sink (NULL: silent); what, unit and
 * rate_unit must outlive it. */
void oc_step_begin(oc_step *s, const oc_progress *sink, const char *what, int64_t total, const char *unit,
                   const char *rate_unit);
/* n more units done, amount more of rate_unit. */
void oc_step_add(oc_step *s, int64_t n, double amount);
/* s ends, done or not (a failure ends its steps too: a bar on a terminal
 * then gets its newline before the error is printed). */
void oc_step_end(oc_step *s);

/* The sink that draws steps on a stream. A step draws nothing until it has
 * run `delay` seconds, so a quick one stays silent in both modes. Then on a
 * terminal one line is redrawn in place (at most every 0.1 s) and ends with
 * a newline; elsewhere a plain line is printed at most every `every` seconds,
 * and a last one when the step ends, unless the line before showed as many
 * units done. The lines:
 *
 *   terminal: packing weights [##########----------] 80/160 tensors, 1.2 GB/s, 1.0 s
 *   plain:    packing weights [80/160 tensors] 1.2 GB/s, 1.0 s
 */
typedef struct oc_progress_bar {
  oc_progress sink;      /* reports to this bar */
  FILE *out;
  bool terminal;
  double delay, every;   /* seconds */
  double (*clock)(void); /* rt_seconds, or a test's */
  double start, last;    /* of the step: when it began, when it was last drawn */
  bool drawn;            /* the step has drawn a line */
  int64_t drawn_done;    /* the units done it showed */
} oc_progress_bar;

/* A bar on out with every = 2 s; returns &b->sink. */
const oc_progress *oc_progress_bar_init(oc_progress_bar *b, FILE *out, bool terminal, double delay,
                                        double (*clock)(void));

/* What -q / --quiet chooses between: NULL when quiet, else a bar on stderr,
 * in terminal mode when stderr is one, with delay from $OLMOC_PROGRESS_DELAY
 * (seconds; default 1; 0 shows every step, as tests do). */
#define OC_PROGRESS_DELAY 1.0
const oc_progress *oc_progress_stderr(oc_progress_bar *b, bool quiet);

#endif
