/* `olmoc bench --profile`: time per kernel family and per layer. */
#ifndef OLMOC_TOOLS_BENCH_PROFILE_H
#define OLMOC_TOOLS_BENCH_PROFILE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "olmoc/executor.h"

/* Profiles one prefill of T tokens and `steps` decode steps from P=0 (tokens
 * holds at least T and steps ids) and prints the tables, or adds them to json
 * as "profile" when json is not NULL. Leaves p rewound to 0 or beyond. */
int bench_profile(rt_program *p, const int32_t *tokens, int64_t T, int64_t steps, int threads, cJSON *json,
                  oc_error *e);

#endif
