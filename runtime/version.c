/* version.c: DepotMem_Version, the version of the library in the process
 * (the header's DEPOT_VERSION_NUMBER is the version a program was built
 * against). */
#include "depot/depot.h"

unsigned DepotMem_Version(void) { return DEPOT_VERSION_NUMBER; }
