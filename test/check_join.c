#include "testutil.h"
START_TEST(placeholder_join) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("join"); TCase *tc = tcase_create("join"); tcase_add_test(tc, placeholder_join); suite_add_tcase(s, tc); return run_suite(s); }
