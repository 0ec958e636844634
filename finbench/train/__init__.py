"""Train stage, in the order a recipe goes through it: `schema` (the keys a recipe may set),
`checks` (validation against the schema, the hardware rules and the real registries), `recipe`
(the typed `Recipe` value, parsed once; what the trainer, the sweep and the evaluator receive),
`mixture` (the recipe's mixture checked and built), `axolotl` and `deepspeed` (compilation to one
complete Axolotl config), `launch` (the launcher command and the trainer's process tree) and `run`
(`finbench train`: plan, run folder, DONE.json); `models` builds the builtin tiny models."""
