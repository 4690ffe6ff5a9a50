#!/bin/sh
# run-driver.sh test/check_SUITE-DRIVER.drv: run the Check suite SUITE with
# CW_TEST_DRIVER=DRIVER (test/tdrv.h). make check runs every suite that
# drives an executor this way once per built driver besides libevent
# (Makefile.am: DRIVER_SUITES); the .drv file is only a name.
t=$(basename "$1" .drv)
suite=${t%-*}
driver=${t##*-}
CW_TEST_DRIVER=$driver
export CW_TEST_DRIVER
exec "$(dirname "$1")/$suite"
