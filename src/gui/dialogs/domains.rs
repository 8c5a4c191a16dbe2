//! The Domains & Accounts dialog: the local domains and their accounts. Adds and removes
//! domains (a domain with accounts cannot be removed, as with `postern domain remove`), adds and
//! removes accounts, sets passwords and each account's Max Account Size (its quota; the list
//! shows it, and below the list the selected account's current usage, read from its
//! Maildir's `maildirsize` every few seconds). Passwords are hashed (argon2) as soon as they are
//! entered; the draft never holds a clear-text password after that. OK / Apply write the
//! domain and account lists into the configuration file and reload the engine. A [`Form`] in
//! a `FormDialog`.

use super::error_label;
use super::form::Form;
use crate::engine::config::size::{format_size, parse_size};
use crate::engine::config::{Account, Config, FieldError, edit};
use crate::engine::store::mailbox;
use crate::engine::store::mailbox::quota::Usage;
use crate::engine::store::password;
use crate::gui::services::Services;
use eframe::egui;
use std::time::{Duration, Instant};

/// How often the selected account's usage is read again while the dialog is open.
const USAGE_REFRESH: Duration = Duration::from_secs(3);

/// One change made in the dialog, replayed on the file as it is at Apply.
#[derive(Debug, Clone)]
enum Change {
    /// Add Domain.
    AddDomain(String),
    /// Remove Domain.
    RemoveDomain(String),
    /// Add Account, with its password hash.
    AddAccount(String, String),
    /// Set Password, with the new hash.
    SetPassword(String, String),
    /// Set Size: the account's Max Account Size in octets (0 = unlimited).
    SetMaxSize(String, u64),
    /// Remove Account.
    RemoveAccount(String),
}

impl Change {
    /// Applies the change to `cfg` (the file as it is now). A change someone else already
    /// made (the domain exists, the account is gone) is not an error.
    fn replay(&self, cfg: &mut Config) -> Result<(), edit::EditError> {
        use edit::EditError::*;
        let r = match self {
            Change::AddDomain(d) => edit::add_domain(cfg, d).map(drop),
            Change::RemoveDomain(d) => edit::remove_domain(cfg, d),
            Change::AddAccount(a, h) => edit::add_account(cfg, a, h.clone()).map(drop),
            Change::SetPassword(a, h) => edit::set_password(cfg, a, h.clone()),
            Change::SetMaxSize(a, n) => edit::set_max_size(cfg, a, *n),
            Change::RemoveAccount(a) => edit::remove_account(cfg, a),
        };
        match r {
            Err(DomainExists(_) | NoSuchDomain(_)) => Ok(()),
            Err(NoSuchAccount(_)) if matches!(self, Change::RemoveAccount(_)) => Ok(()),
            other => other,
        }
    }
}

/// The dialog's draft.
pub struct DomainsForm {
    /// The configuration as it will be saved; only its domains and accounts change here,
    /// through the engine's rules (`config::edit`).
    draft: Config,
    /// What was changed since the dialog opened (or last applied), in order: Apply replays
    /// these on the file as it is then, so a change made meanwhile with `postern domain` or
    /// `postern account` is kept, not overwritten with the lists as they were at opening.
    changes: Vec<Change>,
    /// The domain whose accounts are listed.
    selected_domain: Option<String>,
    /// The account the password and remove buttons act on.
    selected_account: Option<String>,
    new_domain: String,
    new_user: String,
    new_password: String,
    /// The new account's password typed a second time.
    new_password2: String,
    set_password: String,
    /// The new password typed a second time.
    set_password2: String,
    /// The selected account's Max Account Size as typed ("500M"; "0" = unlimited).
    max_size: String,
    /// The selected account's usage as last read: (account, when, octets and messages or
    /// why it could not be read).
    usage: Option<(String, Instant, Result<Usage, String>)>,
    /// Problem with the last Add Domain.
    domain_error: Option<String>,
    /// Problem with the last Add Account / Set Password.
    account_error: Option<String>,
    /// What the last action did, for the dialog's result line.
    notice: Option<String>,
}

impl Form for DomainsForm {
    const TITLE: &'static str = "Domains & Accounts";

    const KEEPS_SIZE: bool = false;

    fn window(window: egui::Window<'_>) -> egui::Window<'_> {
        window
            .resizable(true)
            .default_pos([100.0, 80.0])
            .default_width(620.0)
    }

    fn from_config(cfg: &Config) -> Self {
        DomainsForm {
            draft: cfg.clone(),
            changes: Vec::new(),
            selected_domain: cfg.domains.first().cloned(),
            selected_account: None,
            new_domain: String::new(),
            new_user: String::new(),
            new_password: String::new(),
            new_password2: String::new(),
            set_password: String::new(),
            set_password2: String::new(),
            max_size: String::new(),
            usage: None,
            domain_error: None,
            account_error: None,
            notice: None,
        }
    }

    fn write_into(&self, cfg: &mut Config) -> Vec<FieldError> {
        self.changes
            .iter()
            .filter_map(|c| c.replay(cfg).err())
            .map(|e| FieldError {
                path: "domains".into(),
                message: e.to_string(),
            })
            .collect()
    }

    /// Errors are listed under the lists, named by domain or account.
    fn shows_error(&self, _path: &str) -> bool {
        false
    }

    /// `domains[1]` -> `domain example.com`, for errors shown under the lists.
    fn describe_path(&self, path: &str) -> String {
        let index = |p: &str| {
            p.split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .and_then(|(i, _)| i.parse::<usize>().ok())
        };
        if path.starts_with("domains[")
            && let Some(d) = index(path).and_then(|i| self.draft.domains.get(i))
        {
            return format!("domain {d}");
        }
        if path.starts_with("accounts[")
            && let Some(a) = index(path).and_then(|i| self.draft.accounts.get(i))
        {
            return format!("account {}", a.address);
        }
        path.to_string()
    }

    fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    /// The saved lists are the draft's: keep the selection and what is typed.
    fn reload(&mut self, cfg: &Config) {
        self.draft.domains = cfg.domains.clone();
        self.draft.accounts = cfg.accounts.clone();
        self.changes.clear();
    }

    /// Reads the selected account's usage again every few seconds (a few `stat`s; a scan of
    /// its folders when `maildirsize` is stale); `contents` shows it under its Max Account
    /// Size.
    fn live(&mut self, ui: &mut egui::Ui, services: &Services) {
        let Some(address) = self.selected_account.clone() else {
            return;
        };
        let Some(acc) = self.draft.account(&address).cloned() else {
            return;
        };
        let stale = match &self.usage {
            Some((a, at, _)) => *a != address || at.elapsed() >= USAGE_REFRESH,
            None => true,
        };
        if stale {
            let root = services.options().data_dir.join("mailboxes");
            let read = match mailbox::Account::new(&root, &address) {
                Some(a) => a.quota(acc.max_size).usage().map_err(|e| e.to_string()),
                None => Err("not user@domain".into()),
            };
            self.usage = Some((address.clone(), Instant::now(), read));
        }
        ui.ctx().request_repaint_after(USAGE_REFRESH);
    }

    fn contents(&mut self, ui: &mut egui::Ui, _errors: &[FieldError]) {
        ui.columns(2, |cols| {
            self.domains_column(&mut cols[0]);
            self.accounts_column(&mut cols[1]);
        });
    }
}

impl DomainsForm {
    fn accounts_of<'a>(&'a self, domain: &str) -> impl Iterator<Item = &'a Account> + use<'a> {
        edit::accounts_of(&self.draft, domain)
    }

    /// Adds the domain typed in "New Domain".
    fn add_domain(&mut self) {
        if self.new_domain.trim().is_empty() {
            self.domain_error = Some("type a domain name, e.g. example.com".into());
            return;
        }
        match edit::add_domain(&mut self.draft, &self.new_domain) {
            Ok(d) => {
                self.changes.push(Change::AddDomain(d.clone()));
                self.selected_domain = Some(d);
                self.new_domain.clear();
                self.domain_error = None;
            }
            Err(e) => self.domain_error = Some(e.to_string()),
        }
    }

    /// Removes the selected domain (only when it has no accounts).
    fn remove_domain(&mut self) {
        if let Some(d) = self.selected_domain.take() {
            match edit::remove_domain(&mut self.draft, &d) {
                Ok(()) => {
                    self.changes.push(Change::RemoveDomain(d));
                    self.selected_domain = self.draft.domains.first().cloned();
                    self.domain_error = None;
                }
                Err(e) => {
                    self.domain_error = Some(e.to_string());
                    self.selected_domain = Some(d);
                }
            }
        }
    }

    /// Adds the account typed in "User Name" / "Password" to the selected domain.
    fn add_account(&mut self) {
        let Some(domain) = self.selected_domain.clone() else {
            self.account_error = Some("add or select a domain first".into());
            return;
        };
        if let Err(e) = edit::check_password(&self.new_password) {
            self.account_error = Some(e.to_string());
            return;
        }
        if self.new_password != self.new_password2 {
            self.account_error = Some("the two passwords differ: type them again".into());
            return;
        }
        let address = format!("{}@{domain}", self.new_user.trim());
        let hash = password::hash(&self.new_password);
        match edit::add_account(&mut self.draft, &address, hash.clone()) {
            Ok(a) => {
                self.changes.push(Change::AddAccount(a.clone(), hash));
                self.select_account(a);
                self.new_user.clear();
                self.new_password.clear();
                self.new_password2.clear();
                self.account_error = None;
            }
            Err(e) => self.account_error = Some(e.to_string()),
        }
    }

    /// Sets the selected account's password.
    fn set_account_password(&mut self) {
        let Some(address) = self.selected_account.clone() else {
            return;
        };
        if self.set_password.is_empty() {
            self.account_error = Some("type the new password first".into());
            return;
        }
        if self.set_password != self.set_password2 {
            self.account_error = Some("the two passwords differ: type them again".into());
            return;
        }
        let hash = password::hash(&self.set_password);
        match edit::set_password(&mut self.draft, &address, hash.clone()) {
            Ok(()) => {
                self.changes
                    .push(Change::SetPassword(address.clone(), hash));
                self.set_password.clear();
                self.set_password2.clear();
                self.account_error = None;
                self.notice = Some(format!(
                    "New password for {address} (saved with OK or Apply)."
                ));
            }
            Err(e) => self.account_error = Some(e.to_string()),
        }
    }

    /// Selects an account: its Max Account Size goes into the field.
    fn select_account(&mut self, address: String) {
        self.max_size = self
            .draft
            .account(&address)
            .map_or_else(String::new, |a| format_size(a.max_size));
        self.selected_account = Some(address);
    }

    /// Sets the selected account's Max Account Size from the field.
    fn set_account_max_size(&mut self) {
        let Some(address) = self.selected_account.clone() else {
            return;
        };
        let n = match parse_size(&self.max_size) {
            Ok(n) => n,
            Err(e) => {
                self.account_error = Some(e);
                return;
            }
        };
        let min = crate::engine::config::validate::MIN_ACCOUNT_SIZE;
        if n != 0 && n < min {
            self.account_error = Some(format!(
                "{n} octets cannot hold a message: give at least {} or 0 for unlimited",
                format_size(min)
            ));
            return;
        }
        match edit::set_max_size(&mut self.draft, &address, n) {
            Ok(()) => {
                self.changes.push(Change::SetMaxSize(address.clone(), n));
                self.account_error = None;
                self.usage = None;
                self.notice = Some(format!(
                    "Max Account Size of {address}: {} (saved with OK or Apply).",
                    size_words(n)
                ));
            }
            Err(e) => self.account_error = Some(e.to_string()),
        }
    }

    fn remove_account(&mut self) {
        if let Some(a) = self.selected_account.take() {
            match edit::remove_account(&mut self.draft, &a) {
                Ok(()) => self.changes.push(Change::RemoveAccount(a)),
                Err(e) => self.account_error = Some(e.to_string()),
            }
        }
    }

    fn domains_column(&mut self, ui: &mut egui::Ui) {
        ui.heading("Domains");
        ui.label("Mail for these domains is delivered to local accounts, never relayed.");
        ui.horizontal(|ui| {
            let l = ui.label("New Domain");
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut self.new_domain)
                        .desired_width(150.0)
                        .hint_text("example.com"),
                )
                .labelled_by(l.id)
                .on_hover_text("A domain this server receives mail for");
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .button("Add Domain")
                .on_hover_text("Add the domain typed beside")
                .clicked()
                || enter
            {
                self.add_domain();
            }
        });
        if let Some(e) = &self.domain_error {
            error_label(ui, e);
        }
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("domain_list")
            .max_height(180.0)
            .show(ui, |ui| {
                if self.draft.domains.is_empty() {
                    ui.weak("(no local domains yet)");
                }
                for d in self.draft.domains.clone() {
                    let n = self.accounts_of(&d).count();
                    let selected = self.selected_domain.as_deref() == Some(d.as_str());
                    if ui
                        .selectable_label(selected, format!("{d} ({n} accounts)"))
                        .on_hover_text("Select this domain to see and edit its accounts")
                        .clicked()
                    {
                        self.selected_domain = Some(d.clone());
                        self.selected_account = None;
                    }
                }
            });
        let has_accounts = self
            .selected_domain
            .as_deref()
            .is_some_and(|d| self.accounts_of(d).next().is_some());
        if ui
            .add_enabled(
                self.selected_domain.is_some() && !has_accounts,
                egui::Button::new("Remove Domain"),
            )
            .on_hover_text("Remove the selected domain")
            .on_disabled_hover_text("Select a domain without accounts (remove its accounts first)")
            .clicked()
        {
            self.remove_domain();
        }
    }

    fn accounts_column(&mut self, ui: &mut egui::Ui) {
        let domain = self.selected_domain.clone();
        ui.heading(match &domain {
            Some(d) => format!("Accounts of {d}"),
            None => "Accounts".to_string(),
        });
        let has_domain = domain.is_some();
        egui::Grid::new("new_account")
            .num_columns(2)
            .show(ui, |ui| {
                let l = ui.label("User Name");
                ui.add_enabled(
                    has_domain,
                    egui::TextEdit::singleline(&mut self.new_user)
                        .desired_width(150.0)
                        .hint_text("alice"),
                )
                .labelled_by(l.id)
                .on_hover_text("The part before the @ of the new account's address")
                .on_disabled_hover_text("Add or select a domain first");
                ui.end_row();
                let l = ui.label("Password");
                ui.add_enabled(
                    has_domain,
                    egui::TextEdit::singleline(&mut self.new_password)
                        .password(true)
                        .desired_width(150.0),
                )
                .labelled_by(l.id)
                .on_hover_text("The new account's password (stored only as an argon2 hash)")
                .on_disabled_hover_text("Add or select a domain first");
                ui.end_row();
                let l = ui.label("Confirm Password");
                ui.add_enabled(
                    has_domain,
                    egui::TextEdit::singleline(&mut self.new_password2)
                        .password(true)
                        .desired_width(150.0),
                )
                .labelled_by(l.id)
                .on_hover_text("The same password again, to catch a typing mistake")
                .on_disabled_hover_text("Add or select a domain first");
                ui.end_row();
            });
        if ui
            .add_enabled(has_domain, egui::Button::new("Add Account"))
            .on_hover_text("Add the account to the selected domain")
            .on_disabled_hover_text("Add or select a domain first")
            .clicked()
        {
            self.add_account();
        }
        if let Some(e) = &self.account_error {
            error_label(ui, e);
        }
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("account_list")
            .max_height(150.0)
            .show(ui, |ui| {
                let Some(d) = &domain else {
                    ui.weak("(select a domain)");
                    return;
                };
                let list: Vec<(String, u64)> = self
                    .accounts_of(d)
                    .map(|a| (a.address.clone(), a.max_size))
                    .collect();
                if list.is_empty() {
                    ui.weak("(no accounts yet)");
                }
                for (a, max) in list {
                    let selected = self.selected_account.as_deref() == Some(a.as_str());
                    let r = ui
                        .horizontal(|ui| {
                            let r = ui
                                .selectable_label(selected, &a)
                                .on_hover_text("Select this account");
                            ui.weak(format!("max {}", size_words(max)));
                            r
                        })
                        .inner;
                    if r.clicked() {
                        self.select_account(a.clone());
                    }
                }
            });
        let has_sel = self.selected_account.is_some();
        egui::Grid::new("set_password")
            .num_columns(2)
            .show(ui, |ui| {
                let l = ui.label("New Password");
                ui.add_enabled(
                    has_sel,
                    egui::TextEdit::singleline(&mut self.set_password)
                        .password(true)
                        .desired_width(150.0),
                )
                .labelled_by(l.id)
                .on_hover_text("The selected account's new password")
                .on_disabled_hover_text("Select an account first");
                ui.end_row();
                let l = ui.label("Confirm New Password");
                ui.add_enabled(
                    has_sel,
                    egui::TextEdit::singleline(&mut self.set_password2)
                        .password(true)
                        .desired_width(150.0),
                )
                .labelled_by(l.id)
                .on_hover_text("The same password again, to catch a typing mistake")
                .on_disabled_hover_text("Select an account first");
                ui.end_row();
            });
        ui.horizontal(|ui| {
            let l = ui.label("Max Account Size");
            ui.add_enabled(
                has_sel,
                egui::TextEdit::singleline(&mut self.max_size)
                    .desired_width(70.0)
                    .hint_text("500M"),
            )
            .labelled_by(l.id)
            .on_hover_text(
                "What all the account's folders may hold: 500M, 2G, 64K or octets. Mail that \
                 would take it past this is refused (552 5.2.2).",
            )
            .on_disabled_hover_text("Select an account first");
            ui.weak("0 = unlimited");
            if ui
                .add_enabled(has_sel, egui::Button::new("Set Size"))
                .on_hover_text("Give the selected account the Max Account Size typed beside")
                .on_disabled_hover_text("Select an account first")
                .clicked()
            {
                self.set_account_max_size();
            }
        });
        if let Some(address) = &self.selected_account {
            let max = self.draft.account(address).map_or(0, |a| a.max_size);
            let text = match &self.usage {
                Some((a, _, Ok(u))) if a == address => Some(usage_line(address, u, max)),
                Some((a, _, Err(e))) if a == address => {
                    Some(format!("Usage of {address}: cannot be read ({e})"))
                }
                _ => None,
            };
            if let Some(text) = text {
                ui.label(text).on_hover_text(
                    "What all the account's folders hold (new and read mail, every folder)",
                );
            }
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(has_sel, egui::Button::new("Set Password"))
                .on_hover_text("Give the selected account the password typed above")
                .on_disabled_hover_text("Select an account first")
                .clicked()
            {
                self.set_account_password();
            }
            if ui
                .add_enabled(has_sel, egui::Button::new("Remove Account"))
                .on_hover_text("Remove the selected account (its mailbox files are kept)")
                .on_disabled_hover_text("Select an account first")
                .clicked()
            {
                self.remove_account();
            }
        });
    }
}

/// "unlimited" for 0, else the size as the field takes it.
fn size_words(n: u64) -> String {
    if n == 0 {
        "unlimited".into()
    } else {
        format_size(n)
    }
}

/// Octets to read at a glance: 1,536 -> "1.5 KiB".
fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} octets");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// "Usage of alice@example.test: 1.5 MiB of 500M (31%), 12 messages".
fn usage_line(address: &str, u: &Usage, max: u64) -> String {
    let of = if max == 0 {
        "no limit".to_string()
    } else {
        format!(
            "{} ({}%)",
            format_size(max),
            u.octets.saturating_mul(100) / max
        )
    };
    format!(
        "Usage of {address}: {} of {of}, {} messages",
        human(u.octets),
        u.messages
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_size_is_set_on_the_selected_account_and_described() {
        let mut d = DomainsForm::from_config(&Config::default());
        d.new_domain = "example.test".into();
        d.add_domain();
        d.new_user = "alice".into();
        d.new_password = "pw".into();
        d.new_password2 = "pw".into();
        d.add_account();
        d.select_account("alice@example.test".into());
        assert_eq!(d.max_size, "0");
        d.max_size = "100".into();
        d.set_account_max_size();
        assert!(d.account_error.as_deref().unwrap().contains("at least 1K"));
        d.max_size = "lots".into();
        d.set_account_max_size();
        assert!(d.account_error.is_some());
        d.max_size = "500M".into();
        d.set_account_max_size();
        assert_eq!(d.account_error, None);
        assert_eq!(d.draft.accounts[0].max_size, 500 << 20);
        let mut file = Config::default();
        edit::add_domain(&mut file, "example.test").unwrap();
        edit::add_account(&mut file, "alice@example.test", "$argon2id$x".into()).unwrap();
        d.changes.retain(|c| matches!(c, Change::SetMaxSize(..)));
        assert!(d.write_into(&mut file).is_empty());
        assert_eq!(file.accounts[0].max_size, 500 << 20);
        let u = Usage {
            octets: 1536,
            messages: 2,
        };
        assert_eq!(
            usage_line("a@b.test", &u, 3072),
            "Usage of a@b.test: 1.5 KiB of 3K (50%), 2 messages"
        );
        assert_eq!(
            usage_line("a@b.test", &u, 0),
            "Usage of a@b.test: 1.5 KiB of no limit, 2 messages"
        );
        assert_eq!(human(5 << 30), "5.0 GiB");
    }

    #[test]
    fn adding_and_removing_domains_and_accounts() {
        let mut d = DomainsForm::from_config(&Config::default());
        d.new_domain = "Example.TEST.".into();
        d.add_domain();
        assert_eq!(d.draft.domains, ["example.test"]);
        d.new_domain = "example.test".into();
        d.add_domain();
        assert!(d.domain_error.as_deref().unwrap().contains("already"));
        d.new_domain = "bad domain".into();
        d.add_domain();
        assert!(d.domain_error.as_deref().unwrap().contains("not a valid"));

        d.new_user = "Alice".into();
        d.new_password = "pw".into();
        d.new_password2 = "pW".into();
        d.add_account();
        assert!(
            d.account_error.as_deref().unwrap().contains("differ"),
            "a mistyped confirmation adds nothing"
        );
        assert!(d.draft.accounts.is_empty());
        d.new_password2 = "pw".into();
        d.add_account();
        assert_eq!(d.account_error, None);
        assert_eq!(d.draft.accounts[0].address, "alice@example.test");
        assert!(password::verify(&d.draft.accounts[0].password, "pw"));
        assert!(d.new_password.is_empty(), "the clear password is not kept");

        d.set_password = "new".into();
        d.set_account_password();
        assert!(d.account_error.as_deref().unwrap().contains("differ"));
        assert!(password::verify(&d.draft.accounts[0].password, "pw"));
        d.set_password2 = "new".into();
        d.set_account_password();
        assert!(password::verify(&d.draft.accounts[0].password, "new"));

        d.remove_domain();
        assert_eq!(d.draft.domains.len(), 1, "a domain with accounts stays");
        d.remove_account();
        d.remove_domain();
        assert!(d.draft.domains.is_empty());
    }

    #[test]
    fn apply_replays_only_the_dialogs_own_changes_on_the_file_as_it_is() {
        let opened = Config {
            domains: vec!["a.test".into()],
            ..Config::default()
        };
        let mut d = DomainsForm::from_config(&opened);
        d.new_domain = "b.test".into();
        d.add_domain();
        // Meanwhile `postern account add bob@a.test` changed the file.
        let mut now = opened.clone();
        edit::add_account(&mut now, "bob@a.test", "$argon2id$bob".into()).unwrap();
        assert!(d.write_into(&mut now).is_empty());
        assert_eq!(now.domains, ["a.test", "b.test"]);
        assert_eq!(now.accounts.len(), 1, "bob is kept");
        // A change that can no longer be made is reported, not forced.
        d.reload(&now);
        d.selected_domain = Some("b.test".into());
        d.remove_domain();
        let mut later = now.clone();
        edit::add_account(&mut later, "eve@b.test", "$argon2id$eve".into()).unwrap();
        let errors = d.write_into(&mut later);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("still has 1 account"),
            "{errors:?}"
        );
    }

    #[test]
    fn paths_are_described_by_name() {
        let cfg = Config {
            domains: vec!["a.test".into()],
            ..Config::default()
        };
        let d = DomainsForm::from_config(&cfg);
        assert_eq!(d.describe_path("domains[0]"), "domain a.test");
        assert_eq!(
            d.describe_path("accounts[3].address"),
            "accounts[3].address"
        );
    }
}
