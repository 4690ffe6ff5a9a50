#include "testutil.h"
START_TEST(placeholder_executor) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("executor"); TCase *tc = tcase_create("executor"); tcase_add_test(tc, placeholder_executor); suite_add_tcase(s, tc); return run_suite(s); }
