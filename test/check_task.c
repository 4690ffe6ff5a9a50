#include "testutil.h"
START_TEST(placeholder_task) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("task"); TCase *tc = tcase_create("task"); tcase_add_test(tc, placeholder_task); suite_add_tcase(s, tc); return run_suite(s); }
