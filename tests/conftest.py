import subprocess
import sys

import pytest


@pytest.fixture
def run_cli():
    """Run ``latentatlas ARGS…`` in a fresh interpreter, as a user would; returns CompletedProcess."""

    def run(*args, cwd=None, timeout=600):
        return subprocess.run([sys.executable, "-m", "latentatlas", *map(str, args)], capture_output=True,
                              text=True, cwd=cwd, timeout=timeout)

    return run


# --- the fast lane: `pytest -m "not slow"` ---------------------------------------------------------------------
#: Modules that start a JVM, a browser, a database server or a notebook kernel, or run the whole demo.
SLOW_MODULES = (
    "test_demo.py",
    "test_notebook.py",
    "test_readme.py",
    "test_report_browser.py",
    "test_sklearn_checks.py",
    "test_spark.py",
    "test_spark_ials.py",
    "test_sql.py",
)
#: Tests that took 1.5 s or more in a full run (`pytest --durations=80`); the rest run in about a minute.
SLOW_TESTS = (
    "test_autoencoder.py::test_cli_ctrl_c_exits_130_with_resume_hint",
    "test_autoencoder.py::test_cli_end_to_end",
    "test_autoencoder.py::test_cli_without_out_writes_a_default_run_folder_and_says_where",
    "test_autoencoder.py::test_kill_between_last_and_best_checkpoint_is_repaired_on_resume",
    "test_autoencoder.py::test_one_training_step_lowers_the_loss",
    "test_autoencoder.py::test_sides_that_are_not_multiples_of_4_are_padded_and_cropped",
    "test_autoencoder.py::test_truncated_checkpoint_and_resume_from_weights_only_file",
    "test_bayes_features.py::test_coordinate_sweeps_sample_the_dense_joint_posterior_of_rows_and_features",
    "test_ials_solver.py::test_cg_converges_to_cholesky",
    "test_ials_solver.py::test_cholesky_half_steps_equal_dense_reference",
    "test_ials_solver.py::test_objective_equals_dense_loss",
    "test_images_api.py::test_a_killed_training_leaves_no_run_json_beside_newer_checkpoints",
    "test_images_api.py::test_imports_change_no_global_state",
    "test_images_api.py::test_resume_into_another_folder_leaves_the_first_untouched",
    "test_images_api.py::test_train_run_resume_takes_settings_from_the_checkpoint",
    "test_images_api.py::test_workflow_runs_round_trip_through_the_run_contract",
    "test_images_cli_latent.py::test_embed_default_fashion_mnist",
    "test_images_cli_latent.py::test_embed_from_checkpoint_with_umap_and_limit",
    "test_images_cli_latent.py::test_embed_from_codes_several_perplexities",
    "test_images_cli_latent.py::test_errors",
    "test_images_colour_vae.py::test_colour_folder_of_mixed_sizes_end_to_end",
    "test_model_api.py::test_ctrl_c_in_train_writes_the_best_model_and_the_resume_command",
    "test_model_api.py::test_evaluate_refuses_when_nothing_can_be_scored",
    "test_model_api.py::test_importing_the_library_pulls_in_no_cli_and_changes_no_global_state",
    "test_model_api.py::test_recommend_for_all_users_predict_pairs_and_similar",
    "test_model_api.py::test_train_records_the_lambda_used_and_clips_shown_scores",
    "test_model_bayes.py::test_cli_trains_and_reports_a_bayes_model",
    "test_one_door.py::test_als_hold_out_is_reported_and_refitted",
    "test_one_door.py::test_bayes_samples_on_all_ratings_and_the_ranker_alone_gets_a_held_out_part",
    "test_one_door.py::test_cli_and_python_give_the_same_model_on_the_same_files",
    "test_ratings_cli_model.py::test_bad_file_in_a_subprocess",
    "test_ratings_cli_model.py::test_train_on_prepared_directory",
    "test_ratings_cli_model.py::test_train_resumes_from_a_saved_model",
    "test_ratings_cli_model.py::test_train_writes_the_run_directory_contract",
    "test_ratings_cli_prepare.py::test_prepare_bad_input_is_one_line_and_exit_2",
    "test_ratings_cli_prepare.py::test_prepare_builtin_json_summary",
    "test_ratings_cli_prepare.py::test_prepare_file_filters_and_leaves_input_untouched",
    "test_ratings_names_cli.py::test_export_projector_of_item_factors",
    "test_ratings_names_cli.py::test_names_are_kept_with_the_data_and_the_model",
    "test_report.py::test_dollar_signs_are_text_not_math",
    "test_report.py::test_html_has_every_table_and_figure",
    "test_report.py::test_large_searches_find_nearly_all_exact_neighbours",
    "test_report.py::test_perplexity_sweep_as_small_multiples",
    "test_report.py::test_report_from_real_ratings_runs",
    "test_reprs.py::test_figures_render_as_png_without_pyplot",
    "test_runs_ownership.py::test_cli_prepare_into_the_folder_holding_its_input_deletes_nothing",
    "test_time_split.py::test_cli_prepare_leave_last_out",
    "test_time_split.py::test_cli_prepare_leave_last_out_without_times",
    "test_time_split.py::test_python_and_arrow_agree_on_what_a_time_is",
    "test_trust_ratings.py::test_a_full_disk_leaves_the_previous_run_whole",
    "test_trust_round2.py::test_broken_pipe_is_quiet_and_not_zero",
    "test_trust_round2.py::test_closed_stdout_exits_non_zero",
    "test_trust_round2.py::test_sql_numeric_ids_beyond_int64_keep_every_digit",
    "test_trust_round2.py::test_tables_escape_names_from_files",
    "test_cli_features.py::test_cold_start_items_and_users_are_predicted_from_their_features",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        path, _, name = item.nodeid.partition("::")
        module = path.rpartition("tests/")[2]
        if module in SLOW_MODULES or f"{module}::{name.partition('[')[0]}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
