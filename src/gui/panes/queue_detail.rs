//! The selected queued mail's details under the queue table: its recipients with their whole
//! last error, its delivery history and, on demand, its content (fetched by a task that reports
//! back over a channel, from the live queue or the spool); and the confirmation Delete asks
//! for, in a modal, with the choice of a failure notice to the sender.

use crate::engine::control::offline;
use crate::engine::control::{Request, Response};
use crate::engine::queue::{Queue, QueueCommand, QueueEntry, RcptState, Target, id_text};
use eframe::egui;
use std::path::PathBuf;
use std::sync::mpsc;

/// A delete waiting for the administrator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmDelete {
    /// The mail.
    pub id: u64,
    /// Its sender (empty: the null sender, who gets no notice).
    pub from: String,
    /// Send the sender a failure notice for the recipients not yet delivered.
    pub notify: bool,
}

/// The details' state.
pub struct Details {
    /// Content of the selected mail, once fetched: (id, text).
    content: Option<(u64, String)>,
    /// Fetched contents arrive here.
    content_rx: mpsc::Receiver<(u64, String)>,
    /// Given to fetch tasks.
    content_tx: mpsc::Sender<(u64, String)>,
    /// The delete being asked about.
    confirm: Option<ConfirmDelete>,
}

impl Default for Details {
    fn default() -> Self {
        let (content_tx, content_rx) = mpsc::channel();
        Details {
            content: None,
            content_rx,
            content_tx,
            confirm: None,
        }
    }
}

/// The delete command for `id`, with or without a failure notice.
pub fn delete_command(id: u64, notify: bool) -> QueueCommand {
    if notify {
        QueueCommand::DeleteNotify(Target::Id(id))
    } else {
        QueueCommand::Delete(Target::Id(id))
    }
}

impl Details {
    /// Delete was clicked for `e`: ask first.
    pub fn ask_delete(&mut self, e: &QueueEntry) {
        self.confirm = Some(ConfirmDelete {
            id: e.meta.id,
            from: e.meta.from.to_string(),
            notify: false,
        });
    }

    /// Shows the confirmation while one is asked; returns the command once confirmed.
    pub fn confirmed_delete(&mut self, ctx: &egui::Context) -> Option<QueueCommand> {
        let c = self.confirm.as_mut()?;
        let mut answer = None;
        let modal = egui::Modal::new(egui::Id::unique("queue_delete_confirm")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading(format!("Delete mail {}?", id_text(c.id)));
            ui.label("The mail leaves the queue and is not tried again.");
            let null = c.from.is_empty();
            ui.add_enabled(
                !null,
                egui::Checkbox::new(&mut c.notify, "Send a Failure Notice to the Sender"),
            )
            .on_hover_text(format!(
                "<{}> is told which recipients did not get the mail",
                c.from
            ))
            .on_disabled_hover_text("The sender is the null sender <>: no notice is sent to it");
            ui.separator();
            ui.horizontal(|ui| {
                if ui.button("Delete Mail").clicked() {
                    answer = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(false);
                }
            });
        });
        if modal.should_close() && answer.is_none() {
            answer = Some(false);
        }
        match answer? {
            true => {
                let c = self.confirm.take()?;
                Some(delete_command(c.id, c.notify && !c.from.is_empty()))
            }
            false => {
                self.confirm = None;
                None
            }
        }
    }

    /// Shows mail `e`'s details, at most `max_height` high. Its content is fetched from
    /// `queue` when the services run, else from the spool in `data_dir`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        e: &QueueEntry,
        queue: Option<Queue>,
        data_dir: Option<PathBuf>,
        rt: &tokio::runtime::Handle,
        max_height: f32,
    ) {
        while let Ok(c) = self.content_rx.try_recv() {
            self.content = Some(c);
        }
        let id = e.meta.id;
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.strong(format!("Mail {} from {}", id_text(id), e.meta.client));
            if ui
                .button("Show Message")
                .on_hover_text("Load the message's headers and body")
                .clicked()
            {
                self.fetch(id, queue, data_dir, ui.ctx(), rt);
            }
        });
        if !e.meta.subject.is_empty() {
            ui.label(format!("Subject: {}", e.meta.subject));
        }
        egui::ScrollArea::vertical()
            .id_salt("queue_detail_rows")
            .max_height(max_height)
            .auto_shrink([false, true])
            .show(ui, |ui| {
                for r in &e.meta.rcpts {
                    let state = match r.state {
                        RcptState::Pending => "pending",
                        RcptState::Delivered => "delivered",
                        RcptState::Failed => "failed",
                    };
                    ui.label(format!("<{}>: {state}", r.addr));
                    if !r.last_error.is_empty() {
                        ui.indent(("rcpt_error", &r.addr), |ui| {
                            ui.add(
                                egui::Label::new(format!("last error: {}", r.last_error)).wrap(),
                            );
                        });
                    }
                }
                if !e.history.is_empty() {
                    ui.strong("History");
                    for h in &e.history {
                        ui.monospace(&**h);
                    }
                }
                if let Some((cid, text)) = &self.content
                    && *cid == id
                {
                    let l = ui.strong("Message");
                    let mut shown = text.as_str();
                    ui.add(
                        egui::TextEdit::multiline(&mut shown)
                            .code_editor()
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(l.id)
                    .on_hover_text("The message as queued");
                }
            });
    }

    fn fetch(
        &mut self,
        id: u64,
        queue: Option<Queue>,
        data_dir: Option<PathBuf>,
        ctx: &egui::Context,
        rt: &tokio::runtime::Handle,
    ) {
        let (tx, ctx) = (self.content_tx.clone(), ctx.clone());
        const GONE: &str = "(no longer in the queue)";
        if let Some(q) = queue {
            rt.spawn(async move {
                let text = match q.show(id).await {
                    Some((_, bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    None => GONE.to_string(),
                };
                let _ = tx.send((id, text));
                ctx.request_repaint();
            });
        } else if let Some(dir) = data_dir {
            rt.spawn_blocking(move || {
                let text = match offline::request(&dir, Request::Show(id)) {
                    Ok(Response::Show(Some((_, text)))) => text,
                    Ok(_) => GONE.to_string(),
                    Err(e) => format!("(cannot read the spool: {e})"),
                };
                let _ = tx.send((id, text));
                ctx.request_repaint();
            });
        }
    }
}
