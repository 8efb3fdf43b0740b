//! Reads a dialplan set (`docs/dialplans.md`) from TOML files and checks it completely: every
//! problem in every file is reported with its place, and only a set without errors becomes a
//! [`Dialplan`].
//!
//! The files are walked by hand (no serde) so that one bad value does not hide the others:
//! [`decls`] registers every named item first, then each section is checked and built with
//! references resolved to ids, prompts are loaded, and [`graph`] checks that no caller can be
//! trapped.

mod decls;
mod graph;
mod nodes;
mod numbers;
mod prompts;
mod resources;
mod shared;
pub(crate) mod spans;
mod time;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_graph;
#[cfg(test)]
mod tests_queues;
#[cfg(test)]
mod tests_sections;

use std::path::{Path, PathBuf};

use toml_edit::ImDocument;

use super::diagnostic::{Diagnostic, Severity};
use super::model::{Dialplan, NodeId};
use crate::media::prompt::PromptStore;
use decls::{Declared, Registry};
use spans::{Diags, Field, Fields, Pos, Src};

/// A dialplan file's name and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The file as shown in messages, e.g. `dialplans/12345.toml`.
    pub name: String,
    /// Its contents.
    pub text: String,
}

/// Where the prompts a dialplan plays come from.
#[derive(Clone, Copy, Debug)]
pub enum PromptSource<'a> {
    /// `<dir>/<name>.wav`, each loaded and checked.
    Dir(&'a Path),
    /// Any valid prompt name is accepted and nothing is loaded (tests).
    Unchecked,
}

/// A dialplan set that passed every check.
#[derive(Debug)]
pub struct Loaded {
    /// The validated dialplan.
    pub dialplan: Dialplan,
    /// Every prompt it plays (empty with [`PromptSource::Unchecked`]).
    pub prompts: PromptStore,
    /// Problems that do not stop the set from loading, sorted by place.
    pub warnings: Vec<Diagnostic>,
}

/// Reads every `*.toml` directly in `dir` (sorted by file name; shown as
/// `dir.join(name).display()`), list files relative to `dir`, prompts from `prompts_dir`.
pub fn load_dir(dir: &Path, prompts_dir: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let mut d = Diags::default();
    let dir_pos = Pos::start_of(&dir.display().to_string());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            d.error(&dir_pos, format!("cannot read the dialplan directory: {e}"));
            return Err(d.list);
        }
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                    paths.push(path);
                }
            }
            Err(e) => d.error(&dir_pos, format!("cannot read the dialplan directory: {e}")),
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut files = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(SourceFile { name, text }),
            Err(e) => d.error(&Pos::start_of(&name), format!("cannot read the file: {e}")),
        }
    }
    if files.is_empty() && !d.has_errors() {
        d.error(
            &dir_pos,
            "no dialplan files (*.toml) in this directory; expected shared.toml and one file per hotline",
        );
    }
    load(&files, dir, PromptSource::Dir(prompts_dir), d)
}

/// Same as [`load_dir`] from in-memory files; `base` is the directory list files are relative to.
pub fn load_files(
    files: &[SourceFile],
    base: &Path,
    prompts: PromptSource,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut d = Diags::default();
    if files.is_empty() {
        d.error(
            &Pos::start_of(&base.display().to_string()),
            "no dialplan files (*.toml); expected shared.toml and one file per hotline",
        );
    }
    load(files, base, prompts, d)
}

fn load(
    files: &[SourceFile],
    base: &Path,
    prompts: PromptSource,
    mut d: Diags,
) -> Result<Loaded, Vec<Diagnostic>> {
    let srcs: Vec<Src> = files
        .iter()
        .map(|f| Src::new(f.name.clone(), f.text.clone()))
        .collect();
    let docs: Vec<Option<ImDocument<&str>>> = srcs
        .iter()
        .map(|src| match ImDocument::parse(src.text.as_str()) {
            Ok(doc) => Some(doc),
            Err(e) => {
                d.syntax(src, &e);
                None
            }
        })
        .collect();
    let declared = decls::declare(&srcs, &docs, &mut d);
    let syntax_ok = docs.iter().all(Option::is_some);
    let mut l = Loader {
        broken: declared.broken || !syntax_ok,
        decl: declared,
        d,
        base,
        plan: Dialplan::default(),
        node_pos: Vec::new(),
        prompt_refs: Vec::new(),
        defaults: shared::Defaults::default(),
    };
    l.build(srcs.first(), syntax_ok);
    let store = prompts::load(&l.prompt_refs, prompts, &mut l.d);
    let Loader { d, plan, .. } = l;
    if d.has_errors() {
        return Err(d.finish());
    }
    Ok(Loaded {
        dialplan: plan,
        prompts: store,
        warnings: d
            .finish()
            .into_iter()
            .filter(|x| x.severity == Severity::Warning)
            .collect(),
    })
}

/// The state of one load: what was declared, what was built so far, and what went wrong.
struct Loader<'a> {
    /// Everything the files declare.
    decl: Declared<'a>,
    /// Problems found.
    d: Diags,
    /// Directory list files are relative to.
    base: &'a Path,
    /// A reference or a node could not be built: the graph checks would be meaningless.
    broken: bool,
    /// The dialplan being built.
    plan: Dialplan,
    /// Where each node is named.
    node_pos: Vec<Pos>,
    /// Every prompt reference with its place.
    prompt_refs: Vec<(String, Pos)>,
    /// `[defaults]`.
    defaults: shared::Defaults,
}

/// Which registry a reference looks in.
#[derive(Clone, Copy)]
enum Kind {
    /// `[schedules.NAME]`.
    Schedule,
    /// `[calendars.NAME]`.
    Calendar,
    /// `[lists.NAME]`.
    List,
    /// `[queues.NAME]`.
    Queue,
    /// `[subcentres.NAME]`.
    SubCentre,
}

impl<'a> Loader<'a> {
    /// Builds every section in dependency order, then runs the graph checks.
    fn build(&mut self, first: Option<&Src>, syntax_ok: bool) {
        shared::clock(self);
        shared::numbering(self);
        time::calendars(self);
        time::schedules(self);
        resources::lists(self);
        resources::queues(self);
        resources::subcentres(self);
        shared::defaults(self);
        nodes::nodes(self);
        numbers::numbers(self, first, syntax_ok);
        shared::unknown(self);
        if !self.broken {
            graph::check(self);
        }
    }

    /// The registry of a kind.
    fn registry(&self, kind: Kind) -> (&Registry<'a>, &'static str) {
        match kind {
            Kind::Schedule => (&self.decl.schedules, "schedules"),
            Kind::Calendar => (&self.decl.calendars, "calendars"),
            Kind::List => (&self.decl.lists, "lists"),
            Kind::Queue => (&self.decl.queues, "queues"),
            Kind::SubCentre => (&self.decl.subcentres, "subcentres"),
        }
    }

    /// Resolves a reference to a schedule, calendar, list, queue or sub-centre.
    fn resolve(&mut self, kind: Kind, f: &Field<'_>) -> Option<u32> {
        let (registry, section) = self.registry(kind);
        let word = registry.word;
        let Some(name) = self.d.str(f, &format!("the name of a {word}")) else {
            self.broken = true;
            return None;
        };
        let (registry, _) = self.registry(kind);
        let id = registry.id(name);
        if id.is_none() {
            self.broken = true;
            self.d.error(
                &f.pos,
                format!("{word} `{name}` is not declared in any [{section}.NAME]"),
            );
        }
        id
    }

    /// Resolves a reference to a node; `label` names it in messages (`next`, `key "1"`).
    fn node_ref(&mut self, f: &Field<'_>, label: &str) -> Option<NodeId> {
        let Some(name) = self.d.str(f, "the name of a node") else {
            self.broken = true;
            return None;
        };
        let id = self.decl.nodes.id(name).map(NodeId);
        if id.is_none() {
            self.broken = true;
            self.d
                .error(&f.pos, format!("{label} to undefined node `{name}`"));
        }
        id
    }

    /// The node `key` of `fields` names, or a placeholder (and an error) when it is missing
    /// or undefined.
    fn required_node(&mut self, fields: &Fields<'_>, key: &str, expected: &str) -> NodeId {
        match fields.get(key) {
            Some(f) => self.node_ref(f, key),
            None => {
                fields.missing(key, expected, &mut self.d);
                None
            }
        }
        .unwrap_or_else(|| {
            self.broken = true;
            NodeId(0)
        })
    }

    /// A list of prompt names; each valid one is recorded as a reference.
    fn prompts(&mut self, src: &Src, f: &Field<'_>) -> Vec<String> {
        let expected = "a list of prompt names, e.g. [\"12345/welcome\"]";
        let Some(list) = self.d.strings(src, f, expected) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, pos) in list {
            if prompts::is_prompt_name(name) {
                self.plan.prompts.insert(name.to_string());
                self.prompt_refs.push((name.to_string(), pos));
                out.push(name.to_string());
            } else {
                self.d.error(
                    &pos,
                    format!(
                        "`{name}` is not a valid prompt name; expected lower-case letters, \
                         digits, `_` and `-` in parts separated by `/`, e.g. \"12345/welcome\""
                    ),
                );
            }
        }
        out
    }

    /// A prompt the engine plays without the files naming it (queue music, announcements):
    /// recorded once, at the first item that needs it, so a missing file is one error.
    fn implied_prompt(&mut self, name: &str, pos: &Pos) {
        if self.plan.prompts.insert(name.to_string()) {
            self.prompt_refs.push((name.to_string(), pos.clone()));
        }
    }

    /// `tags = { name = "value" }`.
    fn tags(&mut self, src: &Src, f: Option<&Field<'_>>) -> Vec<(String, String)> {
        let Some(f) = f else { return Vec::new() };
        let expected = "a table of tag names and values, e.g. { topic = \"legal-aid\" }";
        let Some(table) = self.d.table(f, expected) else {
            return Vec::new();
        };
        let fields = Fields::of(src, table, "`tags`".into(), f.pos.clone());
        let mut out = Vec::new();
        for tag in fields.iter() {
            if !spans::is_tag_name(tag.key) {
                self.d.error(
                    &tag.key_pos,
                    format!(
                        "tag name `{}` is not valid; expected lower-case letters, digits, `_` and `-`",
                        tag.key
                    ),
                );
            }
            if let Some(value) = self.d.str(tag, "a string") {
                out.push((tag.key.to_string(), value.to_string()));
            }
        }
        out
    }
}
