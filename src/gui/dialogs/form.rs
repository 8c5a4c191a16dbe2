//! How a settings dialog is built, the one way: a [`Form`] (a draft of some settings, made
//! from the configuration and written back into it) inside a [`FormDialog`] (the window, the
//! OK / Cancel / Apply row, the load error, the field errors and the result line). A dialog
//! keeps the size it opened with: the fields' area is as tall as when it opened (scrolling when
//! errors under the fields make it taller), the result line has a fixed area of its own, and
//! errors wrap at the dialog's width, so nothing jumps when errors appear and go. Also the
//! pieces forms are made of: [`grid`] for labelled rows, [`ListEdit`] (a list of strings with
//! add and remove) and the parsers that turn a field's text into a value or a field error.

use super::{Pending, apply_and_report, error_for, error_label, load, take_report};
use crate::engine::config::{Config, ConfigError, FieldError, HumanDuration};
use crate::gui::services::Services;
use eframe::egui;

/// Text for a port field's parse error.
pub const PORT: &str = "a port number from 1 to 65535";

/// Width of the label column, the same in every section so the fields line up.
pub const LABEL_WIDTH: f32 = 200.0;

/// Lines of the result area below the fields (reserved while empty; scrolls past that).
const RESULT_LINES: f32 = 3.0;

/// Room below the result area: the separator, the button row and the window's margin.
const BELOW_RESULT: f32 = 60.0;

/// Frames a dialog may take to settle at its natural size before that size is kept anyway
/// (egui grows a new window towards its content over a few frames).
const SETTLE_FRAMES: u8 = 60;

/// The size a dialog opened with, kept from then on.
#[derive(Debug, Clone, Copy, Default)]
struct Kept {
    /// Frames shown so far (up to [`SETTLE_FRAMES`]).
    frames: u8,
    /// The size stopped changing: it is kept.
    settled: bool,
    /// The content's width.
    width: f32,
    /// The fields' area's height.
    fields: f32,
    /// The content's size in the last frame (the window follows it a frame later).
    last: egui::Vec2,
}

impl Kept {
    /// Whether the size is settled and kept.
    fn settled(&self) -> bool {
        self.settled
    }

    /// Takes in a frame's sizes: while settling, settled once the width and the fields' height
    /// are those of the frame before. Returns whether the content changed size this frame (the
    /// window then needs another frame to follow).
    fn measure(&mut self, content: egui::Vec2, fields: f32) -> bool {
        let changed = content != self.last;
        self.last = content;
        if !self.settled {
            self.frames += 1;
            self.settled = (self.frames > 1 && content.x == self.width && fields == self.fields)
                || self.frames >= SETTLE_FRAMES;
            self.width = content.x;
            self.fields = fields;
        }
        changed || !self.settled
    }
}

/// Parses a number field; a failure becomes an error for `path`.
pub fn parse_num<T: std::str::FromStr>(
    text: &str,
    path: &str,
    what: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match text.trim().parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(FieldError {
                path: path.into(),
                message: format!("`{}` is not {what}", text.trim()),
            });
            None
        }
    }
}

/// Parses a duration field ("30s", "5m"); a failure becomes an error for `path`.
pub fn parse_duration(
    text: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<HumanDuration> {
    HumanDuration::parse(text)
        .map_err(|message| {
            errors.push(FieldError {
                path: path.into(),
                message,
            })
        })
        .ok()
}

/// The two-column grid of labelled rows ([`super::text_row`], [`super::check_row`]), with the
/// label column [`LABEL_WIDTH`] wide.
pub fn grid(id: &str) -> egui::Grid {
    egui::Grid::new(id)
        .num_columns(2)
        .spacing([12.0, 6.0])
        .min_col_width(LABEL_WIDTH)
}

/// Why OK and Apply are greyed out (the configuration file cannot be read).
const CANNOT_APPLY: &str =
    "The configuration file cannot be read (see above), so nothing can be saved";

/// A button of the dialog's bottom row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Apply and close.
    Ok,
    /// Close without applying.
    Cancel,
    /// Apply and stay open.
    Apply,
}

/// The OK / Cancel / Apply row; `can_apply` false greys out OK and Apply. OK closes the
/// dialog once the running server has applied the settings; when it reports a failure (a
/// port that cannot be bound) the dialog stays open and shows it.
pub fn button_row(ui: &mut egui::Ui, can_apply: bool) -> Option<Action> {
    let mut action = None;
    ui.separator();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(can_apply, egui::Button::new("OK"))
            .on_hover_text("Save the settings, apply them to the running server and close")
            .on_disabled_hover_text(CANNOT_APPLY)
            .clicked()
        {
            action = Some(Action::Ok);
        }
        if ui
            .button("Cancel")
            .on_hover_text("Close without saving")
            .clicked()
        {
            action = Some(Action::Cancel);
        }
        if ui
            .add_enabled(can_apply, egui::Button::new("Apply"))
            .on_hover_text("Save the settings and apply them to the running server")
            .on_disabled_hover_text(CANNOT_APPLY)
            .clicked()
        {
            action = Some(Action::Apply);
        }
    });
    action
}

/// A draft of some settings.
pub trait Form {
    /// Window title.
    const TITLE: &'static str;
    /// Whether the dialog keeps the size it opened with (false for one the admin resizes:
    /// it keeps the size given it, and only its result area is fixed).
    const KEEPS_SIZE: bool = true;
    /// The draft of the configuration as it is now.
    fn from_config(cfg: &Config) -> Self;
    /// Writes the draft into `cfg`; returns errors for fields that do not parse.
    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError>;
    /// The fields; `errors` are the last Apply's, to show beside their fields.
    fn contents(&mut self, ui: &mut egui::Ui, errors: &[FieldError]);
    /// What the form shows of the running engine below its fields (read each frame; nothing
    /// by default).
    fn live(&mut self, _ui: &mut egui::Ui, _services: &Services) {}
    /// Field paths the form shows errors for itself (others are listed at the bottom).
    fn shows_error(&self, path: &str) -> bool;
    /// How an error listed at the bottom names its field (the dotted path by default).
    fn describe_path(&self, path: &str) -> String {
        path.to_string()
    }
    /// A message for the result line from the form itself (taken once).
    fn take_notice(&mut self) -> Option<String> {
        None
    }
    /// The window's placement and size (the dialog sets the title, close button, and no
    /// collapsing; it is not resizable unless this says so).
    fn window(window: egui::Window<'_>) -> egui::Window<'_>
    where
        Self: Sized,
    {
        window
    }
    /// Takes in the configuration as saved by Apply.
    fn reload(&mut self, cfg: &Config)
    where
        Self: Sized,
    {
        *self = Self::from_config(cfg);
    }
}

/// A dialog window around a [`Form`].
pub struct FormDialog<F: Form> {
    /// The draft.
    pub form: F,
    /// Why the file could not be read (the dialog then only offers Cancel).
    load_error: Option<ConfigError>,
    /// Errors of the last Apply.
    errors: Vec<FieldError>,
    /// Result of the last Apply.
    message: Option<String>,
    /// Whether the result line tells of a failure (the running server's report).
    failure: bool,
    /// The running server's report of the last Apply, while awaited.
    pending: Option<Pending>,
    /// OK was pressed: close once the running server's report says all went well (a
    /// failure keeps the dialog open, showing it).
    closing: bool,
    /// The size the dialog opened with.
    kept: Kept,
}

impl<F: Form> FormDialog<F> {
    /// The dialog over the configuration file as it is now.
    pub fn open(services: &Services) -> Self {
        let (cfg, load_error) = match load(services) {
            Ok(c) => (c, None),
            Err(e) => (Config::default(), Some(e)),
        };
        FormDialog {
            form: F::from_config(&cfg),
            load_error,
            errors: Vec::new(),
            message: None,
            failure: false,
            pending: None,
            closing: false,
            kept: Kept::default(),
        }
    }

    fn apply(&mut self, services: &Services) -> bool {
        let form = &self.form;
        let saved = apply_and_report(
            services,
            |cfg| form.write_into(cfg),
            &mut self.errors,
            &mut self.message,
            &mut self.pending,
        );
        self.failure = false;
        match saved {
            Some(cfg) => {
                self.form.reload(&cfg);
                true
            }
            None => false,
        }
    }

    /// Shows the dialog; false once it is closed.
    pub fn show(&mut self, ctx: &egui::Context, services: &Services) -> bool {
        let mut open = true;
        let mut action = None;
        let mut reported = None;
        let window = egui::Window::new(F::TITLE)
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_pos([80.0, 70.0]);
        let mut window = F::window(window);
        let kept = self.kept;
        let keep = F::KEEPS_SIZE && kept.settled();
        if keep {
            window = window.max_width(kept.width);
        }
        let shown = window.show(ctx, |ui| {
            if keep {
                ui.set_min_width(kept.width);
            }
            let top = ui.min_rect().top();
            if let Some(e) = &self.load_error {
                error_label(
                    ui,
                    &format!(
                        "The configuration file cannot be read, so it cannot be edited here:\n{e}"
                    ),
                );
                action = button_row(ui, false);
                return;
            }
            // The fields take what the screen has below the window's top, less the result area
            // and the button row.
            let result_height = RESULT_LINES * ui.text_style_height(&egui::TextStyle::Body);
            let most =
                (ctx.content_rect().bottom() - top - result_height - BELOW_RESULT).max(100.0);
            let fields_top = ui.cursor().top();
            if keep {
                egui::ScrollArea::vertical()
                    .min_scrolled_height(kept.fields.min(most))
                    .max_height(kept.fields.min(most))
                    .auto_shrink([false, true])
            } else {
                egui::ScrollArea::vertical().max_height(most)
            }
            .show(ui, |ui| {
                self.form.contents(ui, &self.errors);
                self.form.live(ui, services);
            });
            // The height the fields were given (less than asked while the window still grows).
            let fields = ui.cursor().top() - fields_top - ui.spacing().item_spacing.y;
            if let Some(m) = self.form.take_notice() {
                self.message = Some(m);
            }
            if let Some((m, failure)) = take_report(services, &mut self.pending) {
                self.message = Some(m);
                self.failure = failure;
                reported = Some(failure);
            }
            if self.pending.is_some() {
                // The report comes from the engine's thread without an event after it.
                ctx.request_repaint_after(std::time::Duration::from_millis(50));
            }
            // The result area: always this tall, so the dialog does not grow or shrink with it.
            ui.add_space(4.0);
            egui::ScrollArea::vertical()
                .id_salt("result")
                .min_scrolled_height(result_height)
                .max_height(result_height)
                .auto_shrink([true, false])
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for e in self
                        .errors
                        .iter()
                        .filter(|e| !self.form.shows_error(&e.path))
                    {
                        let field = self.form.describe_path(&e.path);
                        error_label(ui, &format!("{field}: {}", e.message));
                    }
                    if let Some(m) = &self.message {
                        if self.errors.is_empty() && !self.failure {
                            ui.add(egui::Label::new(m.as_str()).wrap());
                        } else {
                            error_label(ui, m);
                        }
                    }
                });
            action = button_row(ui, true);
            let size = egui::vec2(ui.min_rect().width(), ui.min_rect().bottom() - top);
            if self.kept.measure(size, fields) {
                ui.ctx().request_repaint();
            }
        });
        // Escape is Cancel for the dialog in front.
        if let Some(shown) = shown
            && action.is_none()
            && escape_closes(ctx, shown.response.layer_id)
        {
            action = Some(Action::Cancel);
        }
        if self.closing && reported.is_some() {
            self.closing = false;
            open &= reported == Some(true);
        }
        match action {
            // Closed at once when no server runs; else once its report has come.
            Some(Action::Ok) if self.apply(services) => {
                self.closing = self.pending.is_some();
                open &= self.closing;
            }
            Some(Action::Ok) => {}
            Some(Action::Apply) => {
                self.closing = false;
                self.apply(services);
            }
            Some(Action::Cancel) => open = false,
            None => {}
        }
        open
    }
}

/// An editable list of strings: the items (selectable), a field for a new one, Add and Remove.
#[derive(Debug, Clone, Default)]
pub struct ListEdit {
    /// The items.
    pub items: Vec<String>,
    /// The text typed for a new item.
    pub new: String,
    /// The selected item.
    pub selected: Option<usize>,
}

impl ListEdit {
    /// A list with these items.
    pub fn new(items: &[String]) -> Self {
        ListEdit {
            items: items.to_vec(),
            ..Default::default()
        }
    }

    /// Shows the list. `noun` names the buttons ("Add {noun}", "Remove {noun}") and the field
    /// ("New {noun}"); errors for `{path}[i]` are shown beside item i.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        noun: &str,
        hover: &str,
        enabled: bool,
        errors: &[FieldError],
        path: &str,
    ) {
        ui.add_enabled_ui(enabled, |ui| {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_min_width(300.0);
                egui::ScrollArea::vertical()
                    .id_salt(path)
                    .max_height(90.0)
                    .show(ui, |ui| {
                        if self.items.is_empty() {
                            ui.weak("(empty)");
                        }
                        for (i, item) in self.items.iter().enumerate() {
                            ui.horizontal(|ui| {
                                if ui
                                    .selectable_label(self.selected == Some(i), item)
                                    .on_hover_text(hover)
                                    .clicked()
                                {
                                    self.selected = Some(i);
                                }
                                if let Some(e) = error_for(errors, &format!("{path}[{i}]")) {
                                    error_label(ui, e);
                                }
                            });
                        }
                    });
            });
            ui.horizontal(|ui| {
                let l = ui.label(format!("New {noun}"));
                let r = ui
                    .add(egui::TextEdit::singleline(&mut self.new).desired_width(170.0))
                    .labelled_by(l.id)
                    .on_hover_text(hover);
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button(format!("Add {noun}")).clicked() || enter)
                    && !self.new.trim().is_empty()
                {
                    self.items.push(self.new.trim().to_string());
                    self.new.clear();
                }
                let can_remove = self.selected.is_some_and(|i| i < self.items.len());
                if ui
                    .add_enabled(can_remove, egui::Button::new(format!("Remove {noun}")))
                    .on_disabled_hover_text("Select an item first")
                    .clicked()
                    && let Some(i) = self.selected.take()
                {
                    self.items.remove(i);
                }
            });
        });
    }

    /// Whether `path` is one of this list's item paths.
    pub fn owns(path: &str, prefix: &str) -> bool {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('['))
    }
}

/// Whether Escape was pressed for the window on `layer`: it is the window in front, and no
/// menu or list is open (egui closes that with the Escape first). Every dialog closes on it.
pub fn escape_closes(ctx: &egui::Context, layer: egui::LayerId) -> bool {
    front_window(ctx) == Some(layer)
        && !egui::Popup::is_any_open(ctx)
        && ctx.input(|i| i.key_pressed(egui::Key::Escape))
}

/// The window in front: the topmost window layer shown now or in the last frame (egui keeps
/// closed windows in its layer order, so its own `top_layer_id` may name one of those).
fn front_window(ctx: &egui::Context) -> Option<egui::LayerId> {
    ctx.memory(|m| {
        let mut front = None;
        for l in m.layer_ids() {
            if l.order == egui::Order::Middle && m.areas().is_visible(&l) {
                front = Some(l);
            }
        }
        front
    })
}
