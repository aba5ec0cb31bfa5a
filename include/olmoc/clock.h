/* The one clock olmoc times things with: monotonic, in seconds. */
#ifndef OLMOC_CLOCK_H
#define OLMOC_CLOCK_H

/* Seconds on a monotonic clock, for timing. */
double rt_seconds(void);

#endif
