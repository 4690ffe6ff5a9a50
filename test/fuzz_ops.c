/*
 * fuzz_ops.c - libFuzzer entry point: the model driver (model.c) over the
 * fuzzer's bytes. The first bytes pick the executor's configuration, the
 * rest are operations (spawn, turn, advance the clock, fire the timer,
 * wake here or from the helper thread, abort, join checks and frees,
 * reweight, free the executor with tasks pending...). A violated check
 * prints what broke and aborts, which libFuzzer reports as a crash.
 *
 * Built and run by `make fuzz` (test/fuzz.am).
 */
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Bounded work per input: one operation may run up to 16 turns. */
#define FUZZ_MAX_OPS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model_opts o = {.max_ops = FUZZ_MAX_OPS, .count_allocs = 1};
    model_run(data, size, &o, NULL);
    return 0;
}
