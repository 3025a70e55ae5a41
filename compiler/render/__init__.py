"""Renderers: values in, text out, nothing else. `diagnostics` (check and build's findings
as text, JSON or GitHub annotations, and their summary line), `matrix` (build's table of
what is on where), and the plan of `flagc diff` in three formats (`plan_text`, `plan_json`,
`plan_markdown`) over the wording they share (`words`, `plan_words`)."""
