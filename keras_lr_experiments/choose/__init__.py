"""Part `choose` of the main job: every way of choosing the learning
rate, at equal budget, on five workloads (`keras-lr reproduce --parts
choose`).

Modules, one concept each: `workloads` (the problems), `budget` (the
sizes and the step counter), `loop` (the compiled training loop), `ways`
(each way of choosing the rate), `population` (PBT and ASHA on Ray
Tune), `runner` (the part, resumably), `table` and `figure` (the
results). The write-up: `docs/studies/choose.md`.
"""
