"""viva.grpo: the Edit-GRPO recipe. The driver (`EditGRPO`) owns the algorithm's step loop; an `Executor` owns the
processes (`LocalExecutor`: every role in this process; `RayExecutor`: actors and placement groups).

Run: ``viva grpo --config configs/grpo/toy.yaml [--local]``
"""
