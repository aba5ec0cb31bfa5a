/* rt_seconds: CLOCK_MONOTONIC as a double, so that every timing in olmoc
 * (load, prefill, decode, compile) is on the same clock. */
#include <time.h>

#include "olmoc/clock.h"

double rt_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
