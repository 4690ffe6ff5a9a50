/* check_config.c - configuration: every bad input gets its error and
 * changes nothing; cw_strerror names every code. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

START_TEST(add_queue_weight_zero_is_einval)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 0), -EINVAL);
    /* nothing was added: the id is still free */
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 3), 0);
    cw_config_free(cfg);
}
END_TEST

START_TEST(add_queue_duplicate_id_is_eexist)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 7, 1), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 7, 2), -EEXIST);
    struct event_base *base = event_base_new();
    cw_executor *ex;
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    /* the first definition stands */
    ck_assert_uint_eq(cw_queue_weight(cw_executor_queue(ex, 7)), 1);
    cw_executor_free(ex);
    event_base_free(base);
    cw_config_free(cfg);
}
END_TEST

START_TEST(null_config_is_einval_everywhere)
{
    ck_assert_int_eq(cw_config_add_queue(NULL, 1, 1), -EINVAL);
    ck_assert_int_eq(cw_config_set_queue_slice(NULL, 1, 1000), -EINVAL);
    /* void setters accept NULL silently */
    cw_config_set_sched_latency(NULL, 1);
    cw_config_set_min_slice(NULL, 1);
    cw_config_set_driver_yield(NULL, 1);
    cw_config_set_max_polls_per_yield(NULL, 1);
    cw_config_set_catch_panics(NULL, true);
    cw_config_set_clock(NULL, fake_now, NULL);
    cw_config_free(NULL);
}
END_TEST

START_TEST(slice_for_unknown_id_is_enoent)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 2, 1000), -ENOENT);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 1, 1000), 0);
    cw_config_free(cfg);
}
END_TEST

START_TEST(slice_zero_or_huge_is_einval)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 1, 0), -EINVAL);
    ck_assert_int_eq(cw_config_set_queue_slice(cfg, 1, UINT64_MAX), -EINVAL);
    cw_config_free(cfg);
}
END_TEST

START_TEST(executor_from_empty_config_is_einval_and_out_null)
{
    cw_config *cfg = cw_config_new();
    struct event_base *base = event_base_new();
    cw_executor *ex = (cw_executor *)&ex; /* garbage the call must clear */
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), -EINVAL);
    ck_assert_ptr_null(ex);
    ex = (cw_executor *)&ex;
    ck_assert_int_eq(cw_executor_new(NULL, cfg, &ex), -EINVAL);
    ck_assert_ptr_null(ex);
    ex = (cw_executor *)&ex;
    ck_assert_int_eq(cw_executor_new(base, NULL, &ex), -EINVAL);
    ck_assert_ptr_null(ex);
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 1), 0);
    ck_assert_int_eq(cw_executor_new(base, cfg, NULL), -EINVAL);
    event_base_free(base);
    cw_config_free(cfg);
}
END_TEST

START_TEST(max_queues_supported_and_one_more_is_einval)
{
    cw_config *cfg = cw_config_new();
    for (uint32_t i = 0; i < CW_MAX_QUEUES; i++)
        ck_assert_int_eq(cw_config_add_queue(cfg, 5000 - i, 1 + i % 7), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 99999, 1), -EINVAL);
    struct event_base *base = event_base_new();
    cw_executor *ex;
    ck_assert_int_eq(cw_executor_new(base, cfg, &ex), 0);
    for (uint32_t i = 0; i < CW_MAX_QUEUES; i++) {
        cw_queue *q = cw_executor_queue(ex, 5000 - i);
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(cw_queue_id(q), 5000 - i);
        ck_assert_uint_eq(cw_queue_weight(q), 1 + i % 7);
    }
    ck_assert_ptr_null(cw_executor_queue(ex, 99999));
    ck_assert_ptr_null(cw_executor_queue(ex, 5000 - CW_MAX_QUEUES));
    cw_executor_free(ex);
    event_base_free(base);
    cw_config_free(cfg);
}
END_TEST

START_TEST(config_is_copied_and_reusable)
{
    cw_config *cfg = cw_config_new();
    ck_assert_int_eq(cw_config_add_queue(cfg, 1, 4), 0);
    struct event_base *base = event_base_new();
    cw_executor *a, *b;
    ck_assert_int_eq(cw_executor_new(base, cfg, &a), 0);
    ck_assert_int_eq(cw_config_add_queue(cfg, 2, 1), 0);
    ck_assert_int_eq(cw_executor_new(base, cfg, &b), 0);
    cw_config_free(cfg);
    ck_assert_ptr_null(cw_executor_queue(a, 2));
    ck_assert_ptr_nonnull(cw_executor_queue(b, 2));
    ck_assert_ptr_eq(cw_queue_executor(cw_executor_queue(a, 1)), a);
    cw_executor_free(a);
    cw_executor_free(b);
    event_base_free(base);
}
END_TEST

/* Was issue 17: system codes the library passes through (socket errors
 * from cw_bev_result(), -EMFILE from the notification fd ...) were all
 * "unknown error". They get the system's text; ours keep theirs. */
START_TEST(strerror_names_system_codes_the_library_passes_through)
{
    const int sys[] = {-ECONNREFUSED, -ENOTSOCK, -EMFILE, -ENFILE, -EACCES, -EBADF,
                       -ENOTCONN, -EHOSTUNREACH, -EACCES, -EADDRINUSE};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        const char *t = cw_strerror(sys[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(strcmp(t, "unknown error") != 0, "%d has no text", sys[i]);
        ck_assert_str_eq(t, strerror(-sys[i])); /* the system's text */
    }
    ck_assert_str_eq(cw_strerror(-ENOENT), "no such queue"); /* ours win */
    ck_assert_str_eq(cw_strerror(-EOVERFLOW), "count would overflow (semaphore permits)");
#ifdef __GLIBC__
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32)
    ck_assert_str_eq(cw_err_name(-ECONNREFUSED), "ECONNREFUSED");
    ck_assert_str_eq(cw_err_name(-EMFILE), "EMFILE");
#endif
#endif
    ck_assert_str_eq(cw_strerror(-4000), "unknown error");
    ck_assert_str_eq(cw_strerror(EINVAL), "unknown error"); /* positive */
    ck_assert_str_eq(cw_strerror(INT_MIN), "unknown error");
}
END_TEST

START_TEST(strerror_names_every_code)
{
    const int codes[] = {0, -EINVAL, -ENOMEM, -ENOENT, -EEXIST, -ECANCELED,
                         -ESHUTDOWN, -EAGAIN, -EBUSY, -EPIPE, -EIO, -EPERM, CW_EPANIC};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_str_ne(cw_strerror(codes[i]), "unknown error");
        ck_assert_str_ne(cw_err_name(codes[i]), "UNKNOWN");
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(cw_strerror(codes[i]), cw_strerror(codes[j]));
    }
    ck_assert_str_eq(cw_err_name(-EEXIST), "EEXIST");
    ck_assert_str_eq(cw_err_name(CW_EPANIC), "EPANIC");
    ck_assert_str_eq(cw_strerror(12345), "unknown error");
    ck_assert_int_lt(CW_EPANIC, -4095); /* outside the errno range */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, add_queue_weight_zero_is_einval);
    tcase_add_test(tc, add_queue_duplicate_id_is_eexist);
    tcase_add_test(tc, null_config_is_einval_everywhere);
    tcase_add_test(tc, slice_for_unknown_id_is_enoent);
    tcase_add_test(tc, slice_zero_or_huge_is_einval);
    tcase_add_test(tc, executor_from_empty_config_is_einval_and_out_null);
    tcase_add_test(tc, max_queues_supported_and_one_more_is_einval);
    tcase_add_test(tc, config_is_copied_and_reusable);
    tcase_add_test(tc, strerror_names_every_code);
    tcase_add_test(tc, strerror_names_system_codes_the_library_passes_through);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
