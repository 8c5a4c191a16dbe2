//! The settings dialogs and what they share. Every dialog is a [`form::Form`] shown by
//! [`form::FormDialog`] (the window, OK / Cancel / Apply, errors and the result line); the rows
//! here are a labelled field with the manual's explanation as hover text and its validation
//! error beside it; [`apply`] merges a dialog's draft into the configuration file as it is on
//! disk now (through [`crate::engine::config::edit`], under the same lock as `postern
//! config`), validates, saves atomically and asks the running engine to reload.

pub mod abuse;
pub mod access;
pub mod dns;
pub mod domains;
pub mod form;
pub mod mailbox;
pub mod outgoing;
pub mod smtp;
pub mod testmail;

use super::services::Services;
use crate::engine::config::{self, Config, ConfigError, EditError, FieldError, validate};
use crate::engine::handle::ReloadReport;
use eframe::egui;

/// The error for `path`, if any.
pub fn error_for<'a>(errors: &'a [FieldError], path: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.path == path)
        .map(|e| e.message.as_str())
}

/// Shows a validation error in the error colour, wrapped at the width there is (a dialog keeps
/// its size when errors come and go: see [`form::FormDialog`]).
pub fn error_label(ui: &mut egui::Ui, message: &str) {
    ui.add(
        egui::Label::new(egui::RichText::new(message).color(ui.visuals().error_fg_color)).wrap(),
    );
}

/// One grid row: the label (with `hover`), a single-line text field tied to it, and the error
/// for `path` under it. `enabled` false greys the field out.
pub fn text_row(
    ui: &mut egui::Ui,
    label: &str,
    hover: &str,
    value: &mut String,
    errors: &[FieldError],
    path: &str,
    enabled: bool,
) -> egui::Response {
    noted_row(ui, label, hover, value, errors, path, enabled, None)
}

/// A [`text_row`] with a short note beside the field, e.g. "0 = no limit".
#[expect(clippy::too_many_arguments, reason = "a text_row and its note")]
pub fn noted_row(
    ui: &mut egui::Ui,
    label: &str,
    hover: &str,
    value: &mut String,
    errors: &[FieldError],
    path: &str,
    enabled: bool,
    note: Option<&str>,
) -> egui::Response {
    let l = ui
        .add_enabled(enabled, egui::Label::new(label))
        .on_hover_text(hover);
    let r = ui
        .vertical(|ui| {
            let r = ui
                .horizontal(|ui| {
                    let r = ui
                        .add_enabled(
                            enabled,
                            egui::TextEdit::singleline(value).desired_width(180.0),
                        )
                        .labelled_by(l.id)
                        .on_hover_text(hover);
                    if let Some(n) = note {
                        ui.add_enabled(enabled, egui::Label::new(egui::RichText::new(n).weak()));
                    }
                    r
                })
                .inner;
            if let Some(e) = error_for(errors, path) {
                error_label(ui, e);
            }
            r
        })
        .inner;
    ui.end_row();
    r
}

/// One grid row with a checkbox (its text is its own label) and the error for `path`.
pub fn check_row(
    ui: &mut egui::Ui,
    label: &str,
    hover: &str,
    value: &mut bool,
    errors: &[FieldError],
    path: &str,
) {
    ui.label("");
    ui.vertical(|ui| {
        ui.checkbox(value, label).on_hover_text(hover);
        if let Some(e) = error_for(errors, path) {
            error_label(ui, e);
        }
    });
    ui.end_row();
}

/// Loads the configuration file as it is now, lets `edit` write the dialog's fields into it
/// (returning errors for fields that do not even parse), validates the result, saves it
/// atomically (keeping `.bak`) and asks the running engine to reload. Returns the saved
/// configuration and, when a running engine was told, where its report will come; invalid
/// fields come back as [`EditError::Fields`].
pub fn apply(
    services: &Services,
    edit: impl FnOnce(&mut Config) -> Vec<FieldError>,
) -> Result<(Config, Option<Pending>), EditError> {
    let path = &services.options().config_path;
    let cfg = config::edit::edit(path, |cfg| {
        // Fields that do not parse keep their old value; the others are validated too, so
        // every problem shows at once (one message per field).
        let mut errors = edit(cfg);
        for e in validate(cfg) {
            if !errors.iter().any(|x| x.path == e.path) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(cfg.clone())
        } else {
            Err(EditError::Fields(errors))
        }
    })?;
    Ok((cfg, services.reload()))
}

/// Where the running server's report of a reload will come.
pub type Pending = tokio::sync::oneshot::Receiver<ReloadReport>;

/// [`apply`], with its outcome put where a dialog shows it: the field errors (cleared on
/// success), the result line, and the reload whose report is awaited (see [`take_report`]).
/// Returns the saved configuration on success.
pub fn apply_and_report(
    services: &Services,
    edit: impl FnOnce(&mut Config) -> Vec<FieldError>,
    errors: &mut Vec<FieldError>,
    message: &mut Option<String>,
    pending: &mut Option<Pending>,
) -> Option<Config> {
    match apply(services, edit) {
        Ok((cfg, told)) => {
            errors.clear();
            *message = Some(saved_message(services, told.is_some()));
            *pending = told;
            Some(cfg)
        }
        Err(EditError::Fields(e)) => {
            *message = Some(format!("Not saved: {} setting(s) need fixing.", e.len()));
            *errors = e;
            None
        }
        Err(e) => {
            *message = Some(format!("Not saved: {}", error_chain(&e)));
            None
        }
    }
}

/// The running server's report of the awaited reload, once it has come: the result line's
/// new text and whether it tells of a failure. The pending reload is dropped once answered
/// (or when the engine stopped before answering).
pub fn take_report(services: &Services, pending: &mut Option<Pending>) -> Option<(String, bool)> {
    use tokio::sync::oneshot::error::TryRecvError;
    let rx = pending.as_mut()?;
    match rx.try_recv() {
        Ok(report) => {
            *pending = None;
            let path = services.options().config_path.display();
            let mut lines = vec![format!("Saved to {path}.")];
            lines.extend(report.lines());
            Some((lines.join("\n"), report.has_failure()))
        }
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Closed) => {
            *pending = None;
            Some((
                format!(
                    "Saved to {}; the server stopped before it applied it.",
                    services.options().config_path.display()
                ),
                true,
            ))
        }
    }
}

/// An error and its causes, `: `-separated (as the command line prints them).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The configuration as the file has it now (the defaults when there is no file yet).
pub fn load(services: &Services) -> Result<Config, ConfigError> {
    config::edit::read(&services.options().config_path)
}

/// The message shown after a successful apply.
pub fn saved_message(services: &Services, told_engine: bool) -> String {
    let path = services.options().config_path.display();
    if told_engine {
        format!("Saved to {path}; the running server is applying it.")
    } else {
        format!("Saved to {path}; it applies when the services start.")
    }
}
