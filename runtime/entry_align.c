/* entry_align.c: libdepot.so's first contribution to depot_prof_text
 * (prof.h), empty and aligned to 64 KiB.  Linked only into libdepot.so,
 * as the first object of its link (BUILD), so that the section starts on
 * a 64 KiB boundary.  The section holds the entry points (malloc, calloc,
 * realloc and the aligned calls: runtime/override.c) and the linker
 * places it after the whole of .text, so without this it could straddle
 * two of the 64 KiB windows that the kernel maps around each page fault
 * ("fault-around"); aligned, the entry points share one window with .fini
 * after them, and the windows before hold code that only some programs run
 * (tools/copts.bzl, "layout").  It costs file padding, not memory.  Not in
 * the static libraries: a program that links them keeps its own layout. */
__asm__(".pushsection depot_prof_text,\"ax\",%progbits\n\t"
        ".balign 65536\n\t"
        ".popsection");
