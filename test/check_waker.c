#include "testutil.h"
START_TEST(placeholder_waker) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("waker"); TCase *tc = tcase_create("waker"); tcase_add_test(tc, placeholder_waker); suite_add_tcase(s, tc); return run_suite(s); }
