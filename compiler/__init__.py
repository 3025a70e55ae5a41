"""gitflags compiler: flag files in, checked and resolved snapshot out.

The pipeline, one module a stage: load -> validate -> resolve -> check -> emit (resolve is
`core.resolve`, shared with the server's verification of a build).
`compiler.pipeline.compile_tree` runs it; `compiler.build.build` runs it, then the git
history, emitting and publishing, as one build; `compiler.cli` is the `flagc` command.
"""
