"""depot_archive: one installable static library out of a cc_library.

Bazel keeps a static archive per cc_library (alloc/libcore.a,
runtime/libapi.a, ...).  A user of an installed Depot wants one
libdepot.a, and one that behaves as Bazel's alwayslink does (the runtime's
start-up runs from a constructor that nothing references, which an archive
member would not be pulled in for).  So the rule links every archive of Depot's own
in the dependency tree into one relocatable object (ld -r), makes the
symbols that libdepot.so hides local to it (objcopy --localize-hidden: only
the API, and the malloc family where linked in, stay global), and archives
that one object.  Position-independent objects, so the archive also links
into shared libraries."""

def _depot_archive_impl(ctx):
    libs = []
    for dep in ctx.attr.deps:
        for li in dep[CcInfo].linking_context.linker_inputs.to_list():
            for lib in li.libraries:
                f = lib.pic_static_library or lib.static_library
                if f and f.owner.workspace_name == "" and f not in libs:
                    libs.append(f)
    out = ctx.outputs.out
    obj = ctx.actions.declare_file(ctx.label.name + ".o")
    ctx.actions.run_shell(
        inputs = libs,
        outputs = [out, obj],
        command = " && ".join([
            'ld -r --whole-archive "${@:3}" --no-whole-archive -o "$1"',
            'objcopy --localize-hidden "$1"',
            'rm -f "$2"',
            'ar rcsD "$2" "$1"',
        ]),
        arguments = [obj.path, out.path] + [f.path for f in libs],
        mnemonic = "DepotArchive",
        progress_message = "Archiving %s" % out.short_path,
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

depot_archive = rule(
    implementation = _depot_archive_impl,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "out": attr.output(mandatory = True),
    },
)
