# Depot's version for the build files (the soname, the pkg-config and CMake
# files).  runtime/include/depot/depot.h holds the same numbers for C;
# tests/install_test.sh checks that the two agree.
DEPOT_VERSION_MAJOR = 1
DEPOT_VERSION_MINOR = 0
DEPOT_VERSION_PATCH = 0
DEPOT_VERSION = "%d.%d.%d" % (DEPOT_VERSION_MAJOR, DEPOT_VERSION_MINOR, DEPOT_VERSION_PATCH)
DEPOT_SONAME = "libdepot.so.%d" % DEPOT_VERSION_MAJOR
