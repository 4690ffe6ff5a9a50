#include "testutil.h"
START_TEST(placeholder_panic) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("panic"); TCase *tc = tcase_create("panic"); tcase_add_test(tc, placeholder_panic); suite_add_tcase(s, tc); return run_suite(s); }
