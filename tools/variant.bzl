"""tls_dynamic_variant: a target as the dlopen variant builds it, for tests
that look at both libdepot.so variants in one build.

`tools/bazelw build --define=depot_tls=dynamic //:libdepot.so` selects
DEPOT_TLS_MODEL="global-dynamic" in alloc/BUILD; Bazel 4 cannot transition
on --define, so this rule adds the same macro through --copt."""

_COPT = '-DDEPOT_TLS_MODEL="global-dynamic"'

def _tls_dynamic_transition_impl(settings, attr):
    return {"//command_line_option:copt": settings["//command_line_option:copt"] + [_COPT]}

_tls_dynamic_transition = transition(
    implementation = _tls_dynamic_transition_impl,
    inputs = ["//command_line_option:copt"],
    outputs = ["//command_line_option:copt"],
)

def _tls_dynamic_variant_impl(ctx):
    src = ctx.attr.src[0][DefaultInfo].files.to_list()[0]
    out = ctx.actions.declare_file(ctx.attr.out)
    ctx.actions.symlink(output = out, target_file = src)
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

tls_dynamic_variant = rule(
    implementation = _tls_dynamic_variant_impl,
    attrs = {
        "src": attr.label(cfg = _tls_dynamic_transition, mandatory = True),
        "out": attr.string(mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
