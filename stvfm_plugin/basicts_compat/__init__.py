"""Every workaround of a BasicTS 1.1.0 (or easytorch) bug, in one package: what the pin to 1.1.0 costs.

When BasicTS fixes one, delete its row's code and keep its test (it then passes against BasicTS itself). The modules
import nothing of the plugin's run layer; `runner.BasicTS110Runner` is the runner with every fix (importing it binds
`builder.PluginBuilder` into BasicTS's runner module).

| Bug in BasicTS 1.1.0 | Where BasicTS has it | Fix here | Test that proves the fix |
| --- | --- | --- | --- |
| `ZScoreScaler` with `norm_each_channel=False` crashes (`torch.Tensor(np.float32)`) | `scaler/z_score_scaler.py` `fit` | `scaler.ZScoreScalerFixed` | `tests/test_fixes.py::test_stock_scaler_still_fails_globally` and the tests after it |
| `null_val` NaN means "no missing-value marker" (a float field) | `configs/tsf_config.py`, `utils/mask.py` | `null_value.basicts_null_val` (the plugin's None becomes NaN only there) | `tests/test_own_data.py` (counts without a null value: nothing masked) |
| Masked metrics end in `nan_to_num`: a NaN prediction scores 0 error, a diverged model MAE 0.000 | `metrics/mae.py`, `mse.py`, `mape.py` | `metrics.honest` (runner metrics, losses) | `tests/test_run_cli.py::test_nan_for_one_sensor_is_never_a_finite_result_and_is_not_ranked` |
| A non-finite validation metric can be kept as the best checkpoint | `runners/basicts_runner.py` `_save_best_model` | `BasicTS110Runner._save_best_model` | `tests/test_run_cli.py::test_a_diverging_run_stops_at_once_says_why_and_is_marked` |
| `AddAuxiliaryLoss` drops a model's auxiliary loss; plain loss functions are rebuilt from their code object (defaults lost) | `runners/callback/add_aux_loss.py`, `BasicTSRunner.__init__` | `losses.MaskedMAEWithAux`, `losses.LikelihoodLoss` (loss modules with a signature) | `tests/test_fixes.py::test_loss_adds_aux_and_exposes_its_signature` |
| The model is built from `cfg.model(cfg.model_config)` only: no graph, coordinates or grid shape | `runners/builder.py` `_build_model` | `builder.BoundModel` (`models.factory.build_model`) | `tests/test_basicts_compat.py::test_models_get_the_dataset_structure_without_patching_basicts` |
| DDP gets `device_ids` for a CPU module (refused by torch) | `runners/builder.py` `_build_model` | `builder.PluginBuilder` | `tests/test_distributed.py` |
| Evaluation on rank 0 goes through DDP, whose buffer broadcast waits for ranks that are not there | `BasicTSRunner._forward`, `validate` | `BasicTS110Runner._forward` | `tests/test_distributed.py` |
| A re-run of a config silently resumes `<ckpt_save_dir>/<md5>` and may skip training | `BasicTSRunner._get_ckpt_save_dir` | `BasicTS110Runner._get_ckpt_save_dir` (explicit run folder) | `tests/test_run_cli.py::test_train_twice_gives_two_fresh_runs_and_eval_reproduces` |
| Every epoch leaves a `.pt.bak` (kept up to 9, 24 MB each for ST-VFM) | easytorch `Runner.save_model` | `BasicTS110Runner._save_model` | `tests/test_run_cli.py::test_a_run_keeps_one_epoch_checkpoint_and_no_backups` |
| A one-batch epoch starts as "Epoch 2 / 1" and then fails to back up a checkpoint | `BasicTSRunner.on_epoch_start` (epoch from the step counter) | `BasicTS110Runner.on_epoch_start` | `tests/test_run_cli.py::test_one_batch_epochs_are_counted_right` |
| The last batch of the last epoch is never trained on | `BasicTSRunner.train` (`num_steps`) | `BasicTS110Runner.on_epoch_start` | `tests/test_run_cli.py::test_every_epoch_trains_on_every_batch` |
| Validation batches are added to the per-horizon *test* meters | `BasicTSRunner._eval_on_horizons` | `BasicTS110Runner._eval_on_horizons` | `tests/test_basicts_compat.py::test_validation_never_feeds_the_per_horizon_test_meters` |
| `save_results` writes raw memmaps (not `np.load`-able) at a wrong offset for the last partial batch; inputs normalised, missing readings as 0 | `BasicTSRunner._save_results` | `BasicTS110Runner._save_results`, `write_results`, `ForecastingTaskFlow` | `tests/test_run_cli.py::test_saved_results_are_in_data_units_with_missing_readings_as_nan` |
| Loggers are cached by name with the file of the first run: a second run in a process logs into the first one's file | easytorch `get_logger` | `BasicTS110Runner.init_logger` | `tests/test_basicts_compat.py::test_each_run_logs_to_its_own_file` |
| Loggers are cached with the stream of the first run: a later run in the process logs to a closed stderr | easytorch `get_logger` | `runner.follow_stderr` | `tests/test_run_cli.py::test_eval_of_a_nan_checkpoint_is_not_a_result` (two runs in one process, captured stderr) |
| Evaluation keeps autograd bookkeeping (`no_grad`, not `inference_mode`) | `BasicTSRunner._eval_loop` | `BasicTS110Runner._eval_loop` | `tests/test_run_cli.py::test_validation_and_test_run_under_inference_mode` |
"""
