/**
 * @file clockworker/common.h
 * @brief Export macro and the opaque types every clockworker header shares.
 *
 * Included by every other clockworker header; users include
 * <clockworker.h>.
 */
#ifndef CLOCKWORKER_COMMON_H
#define CLOCKWORKER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * @def CW_EXTERN
 * Marks a declaration the shared library exports. The library is built
 * with -fvisibility=hidden, so only what carries this is visible; with
 * GCC and Clang it is `__attribute__((visibility("default")))`, elsewhere
 * empty.
 */
/**
 * @def CW_PRINTF
 * Lets GCC and Clang check the printf-style format of a function, as
 * cw_panic() declares: `fmt` is the position of the format argument and
 * `args` that of the first variadic one. Empty with other compilers.
 */
/**
 * @def CW_NORETURN
 * Marks a function that never returns (cw_panic()): C11 `_Noreturn`, or
 * `[[noreturn]]` in C++.
 */
#if defined(__GNUC__) || defined(__clang__)
#define CW_EXTERN __attribute__((visibility("default")))
#define CW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CW_EXTERN
#define CW_PRINTF(fmt, args)
#endif

/* _Noreturn is C11; C++ spells it [[noreturn]]. */
#if defined(__cplusplus)
#define CW_NORETURN [[noreturn]]
#else
#define CW_NORETURN _Noreturn
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** A set of settings from which executors are built (config.h). */
typedef struct cw_config cw_config;
/** The executor: queues, scheduler and run loop on one event_base (executor.h). */
typedef struct cw_executor cw_executor;
/** A weighted FIFO of runnable tasks inside an executor (executor.h). */
typedef struct cw_queue cw_queue;
/** The context a task's poll function receives (task.h). */
typedef struct cw_cx cw_cx;
/** A reference-counted handle that re-enqueues a task (waker.h). */
typedef struct cw_waker cw_waker;
/** The spawner's handle on a task: completion, status, result (join.h). */
typedef struct cw_join cw_join;

#ifdef __cplusplus
}
#endif
#endif
