package uring

import "os"

// Required reports whether the environment says that io_uring works here
// (GOAT_TEST_IO_URING=required, which `make test` sets: the machines it
// runs on have it). Tests that need a ring skip where the kernel refuses
// one, unless it is required: then they fail, so that a machine where
// they would silently prove nothing is noticed.
func Required() bool { return os.Getenv("GOAT_TEST_IO_URING") == "required" }
