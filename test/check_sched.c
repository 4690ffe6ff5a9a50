#include "testutil.h"
START_TEST(placeholder_sched) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("sched"); TCase *tc = tcase_create("sched"); tcase_add_test(tc, placeholder_sched); suite_add_tcase(s, tc); return run_suite(s); }
