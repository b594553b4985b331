//! The API driven end to end: a real `lockstep serve` process, real receivers on loopback.
//!
//! Every test runs twice, once per storage backend: on SQLite, and on PostgreSQL when
//! `LOCKSTEP_TEST_DATABASE_URL` names a server. Without one, the PostgreSQL runs skip with
//! a notice, unless `CI` is set, where they fail.

mod support;

mod bad_input;
mod cluster;
mod contract;
mod delivery;
mod fuzz;
mod hostile;
mod lifecycle;
mod locks;
mod restart;
mod security;
mod signatures;

/// Declares each test once per backend, as `on_sqlite::NAME` and `on_postgres::NAME`.
macro_rules! matrix {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    crate::support::run(crate::support::Backend::Sqlite, crate::$module::$test())
                        .await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    crate::support::run(crate::support::Backend::Postgres, crate::$module::$test())
                        .await
                }
            )*
        }
    };
}

matrix! {
    restart::a_step_cut_short_by_a_kill_is_stopped_before_it_runs_again,
    restart::sigterm_stops_a_running_step_and_the_restart_runs_it_again,
    fuzz::a_nul_character_in_any_text_is_a_422_naming_the_field,
    security::a_loopback_target_is_refused_when_saved_and_again_when_sent,
    security::an_operator_cancels_a_waiting_release_right_after_a_restart,
    security::custom_headers_are_sent_collisions_refused_and_credentials_shown_redacted,
    security::a_patch_with_null_removes_a_setting_and_an_absent_field_keeps_it,
    fuzz::mutated_bodies_never_get_a_5xx_on_any_writing_endpoint,
    fuzz::repeated_bad_tokens_from_one_address_are_held_back_but_valid_ones_pass,
    fuzz::json_nested_too_deep_is_refused_with_a_400,
    signatures::deliveries_are_signed_over_the_exact_bytes_including_awkward_text,
    signatures::a_rotated_key_keeps_signing_beside_the_new_one_during_its_overlap,
    signatures::a_rotation_without_overlap_signs_with_the_new_key_alone,
    security::secrets_and_bodies_are_sealed_at_rest_and_need_their_key,
    security::no_secret_or_token_appears_in_logs_answers_or_the_action_log,
    hostile::headers_then_a_byte_every_few_seconds_times_out_on_the_deadline,
    hostile::headers_then_silence_times_out_on_the_deadline,
    hostile::a_50_mib_body_is_cut_at_64_kib_without_reading_the_rest_or_growing_memory,
    hostile::an_endless_chunked_body_is_cut_at_64_kib_and_the_connection_dropped,
    hostile::a_content_length_far_larger_than_the_body_that_comes_fails_when_it_ends,
    hostile::a_connection_reset_mid_response_is_a_connect_failure,
    hostile::a_refused_connection_is_a_connect_failure,
    hostile::a_name_that_does_not_resolve_is_a_dns_failure,
    hostile::header_lines_that_never_end_fail_without_growing_memory,
    hostile::an_http2_answer_with_a_stream_reset_fails_fast_as_connect,
    hostile::redirects_301_302_and_307_are_never_followed,
    hostile::a_connection_the_endpoint_stopped_keeping_alive_never_fails_the_next_attempt,
    hostile::a_self_signed_certificate_fails_as_tls,
    hostile::an_expired_certificate_fails_as_tls_even_from_a_trusted_ca,
    hostile::a_webhooks_own_ca_certificate_lets_a_self_signed_endpoint_pass,
    hostile::a_ca_certificate_that_does_not_parse_is_a_422_naming_the_field,
    hostile::a_429_with_retry_after_in_seconds_delays_the_next_attempt_at_least_as_asked,
    hostile::a_429_with_retry_after_as_an_http_date_delays_the_next_attempt_until_then,
    hostile::a_429_with_a_malformed_retry_after_falls_back_to_the_schedule,
    delivery::a_failing_endpoint_gets_exactly_the_scheduled_attempts_then_the_delivery_fails,
    delivery::a_410_disables_the_webhook_and_no_gate_waits_on_it,
    delivery::a_webhook_that_only_fails_for_long_enough_is_disabled,
    delivery::an_expired_lock_applies_its_default_outcome_and_a_late_release_is_409,
    delivery::a_receiver_extends_the_lock_it_holds_and_then_releases_it,
    delivery::a_redelivery_sends_the_same_id_and_bytes_again,
    delivery::cancelling_a_release_stops_its_running_step,
    bad_input::malformed_bodies_wrong_types_and_unknown_fields_are_400s,
    bad_input::content_types_other_than_json_are_415_but_a_charset_is_fine,
    bad_input::an_oversized_body_is_413_and_nothing_is_written,
    bad_input::webhook_inputs_that_break_a_rule_are_422s_naming_the_field,
    bad_input::a_tag_that_is_not_a_git_ref_never_reaches_a_step_and_is_not_stored,
    bad_input::a_tag_with_shell_characters_in_an_allowed_form_runs_harmlessly,
    bad_input::duplicate_instance_ids_are_409_and_bad_slugs_422,
    bad_input::no_token_is_401_and_the_wrong_scope_is_403,
    bad_input::tokens_are_shown_once_listed_without_secrets_and_stop_working_when_revoked,
    bad_input::health_and_metrics_are_served_without_a_token,
    bad_input::webhook_secrets_are_write_only,
    contract::deliveries_carry_exactly_the_contract_headers_and_body,
    contract::every_attempt_of_a_delivery_sends_the_same_bytes_and_id,
    contract::the_instance_is_sent_as_it_was_when_the_event_fired,
    contract::a_trickling_endpoint_times_out_on_the_webhooks_deadline,
    contract::a_redirect_is_a_failed_attempt_that_keeps_its_location_and_is_not_followed,
    contract::at_most_64_kib_of_a_response_is_read_and_kept,
    lifecycle::a_release_runs_its_events_steps_and_lock_in_order_and_closes,
    lifecycle::a_failing_step_fails_the_release_and_release_failed_subscribers_hear_why,
    lifecycle::an_abort_fails_the_release_with_the_receivers_message_logged,
    lifecycle::releases_of_one_instance_queue_while_other_instances_run_alongside,
    lifecycle::an_operator_cancel_ends_a_waiting_release_and_its_lock_then_refuses_a_second_cancel,
    locks::a_release_call_that_arrives_before_the_webhooks_response_counts,
    locks::fifty_identical_concurrent_calls_get_one_answer_and_resume_the_release_once,
    locks::a_conflicting_outcome_is_409_and_an_unknown_token_is_404,
    locks::an_operator_force_releases_a_lock_by_public_id_and_is_named_in_the_log,
    locks::receivers_append_to_the_action_log_and_read_it_back_in_order,
    restart::a_release_parked_on_a_lock_survives_a_kill_and_resumes_when_released,
    restart::a_lock_released_just_before_a_kill_is_honoured_after_the_restart,
    restart::a_request_in_flight_at_a_kill_is_sent_again_with_the_same_delivery_id,
    restart::sigterm_lets_the_attempt_in_flight_finish_and_exits_cleanly,
}

/// Several nodes need a shared database: these run on PostgreSQL only.
mod on_postgres_cluster {
    use crate::support::{run, Backend};

    #[tokio::test]
    async fn a_lock_released_through_any_node_wakes_the_release_wherever_it_runs() {
        let test =
            crate::cluster::a_lock_released_through_any_node_wakes_the_release_wherever_it_runs();
        run(Backend::Postgres, test).await
    }

    #[tokio::test]
    async fn a_release_whose_node_is_killed_is_finished_by_another_node() {
        run(
            Backend::Postgres,
            crate::cluster::a_release_whose_node_is_killed_is_finished_by_another_node(),
        )
        .await
    }
}
