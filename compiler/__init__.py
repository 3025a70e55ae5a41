"""gitflags compiler: flag files in, checked and resolved snapshot out.

The pipeline, one module a stage: load -> validate -> resolve -> check -> emit.
`compiler.pipeline.compile_tree` runs it; `compiler.cli` is the `flagc` command.
"""
