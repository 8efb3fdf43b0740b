//! First pass over the files: the top-level sections, and every named item (node, schedule,
//! calendar, list, queue, sub-centre) with its id, so references can be resolved in any order.

use std::collections::HashMap;

use toml_edit::{ImDocument, TableLike};

use super::spans::{describe, is_name, tables, Diags, Field, Fields, Pos, Src};

/// The top-level keys of a dialplan file.
const TOP_KEYS: &[&str] = &[
    "clock",
    "numbering",
    "unknown",
    "defaults",
    "numbers",
    "nodes",
    "calendars",
    "schedules",
    "lists",
    "queues",
    "subcentres",
];

/// A table of a file, with where it is named.
#[derive(Clone)]
pub(super) struct Section<'a> {
    /// The file.
    pub src: &'a Src,
    /// The table.
    pub table: &'a dyn TableLike,
    /// Its name (the key), e.g. `welcome` or `defaults`.
    pub name: &'a str,
    /// Where it is named.
    pub pos: Pos,
}

impl<'a> Section<'a> {
    /// Its keys, described as `what` in messages.
    pub fn fields(&self, what: String) -> Fields<'a> {
        Fields::of(self.src, self.table, what, self.pos.clone())
    }
}

/// The items of one kind, in declaration order; the index is the id.
pub(super) struct Registry<'a> {
    /// The kind, in messages: `node`, `schedule`, ...
    pub word: &'static str,
    /// The items.
    pub decls: Vec<Section<'a>>,
    ids: HashMap<&'a str, u32>,
}

impl<'a> Registry<'a> {
    fn new(word: &'static str) -> Self {
        Registry {
            word,
            decls: Vec::new(),
            ids: HashMap::new(),
        }
    }

    /// The id of a declared name.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn declare(&mut self, s: Section<'a>, d: &mut Diags) {
        if let Some(&first) = self.ids.get(s.name) {
            let first = &self.decls[first as usize].pos;
            d.error(
                &s.pos,
                format!(
                    "{} `{}` is declared twice; first at {first}",
                    self.word, s.name
                ),
            );
            return;
        }
        let id = self.decls.len() as u32;
        self.ids.insert(s.name, id);
        self.decls.push(s);
    }
}

/// Everything the files declare, before it is checked.
pub(super) struct Declared<'a> {
    /// `[nodes.NAME]`.
    pub nodes: Registry<'a>,
    /// `[schedules.NAME]`.
    pub schedules: Registry<'a>,
    /// `[calendars.NAME]`.
    pub calendars: Registry<'a>,
    /// `[lists.NAME]`.
    pub lists: Registry<'a>,
    /// `[queues.NAME]`.
    pub queues: Registry<'a>,
    /// `[subcentres.NAME]`.
    pub subcentres: Registry<'a>,
    /// `[clock]`.
    pub clock: Option<Section<'a>>,
    /// `[numbering]`.
    pub numbering: Option<Section<'a>>,
    /// `[unknown]`.
    pub unknown: Option<Section<'a>>,
    /// `[defaults]`.
    pub defaults: Option<Section<'a>>,
    /// Every `[[numbers]]` entry, named `numbers`, placed at its header.
    pub numbers: Vec<Section<'a>>,
    /// A declaration could not be registered (references to it would be dangling).
    pub broken: bool,
}

/// Reads the top level of every parsed file.
pub(super) fn declare<'a>(
    srcs: &'a [Src],
    docs: &'a [Option<ImDocument<&'a str>>],
    d: &mut Diags,
) -> Declared<'a> {
    let mut out = Declared {
        nodes: Registry::new("node"),
        schedules: Registry::new("schedule"),
        calendars: Registry::new("calendar"),
        lists: Registry::new("list"),
        queues: Registry::new("queue"),
        subcentres: Registry::new("sub-centre"),
        clock: None,
        numbering: None,
        unknown: None,
        defaults: None,
        numbers: Vec::new(),
        broken: false,
    };
    for (src, doc) in srcs.iter().zip(docs) {
        let Some(doc) = doc else { continue };
        let root = Fields::of(
            src,
            doc.as_table(),
            "the file".into(),
            Pos::start_of(&src.name),
        );
        root.unknown_keys(TOP_KEYS, d);
        for f in root.iter() {
            out.top_level(src, f, d);
        }
    }
    out
}

impl<'a> Declared<'a> {
    fn top_level(&mut self, src: &'a Src, f: &Field<'a>, d: &mut Diags) {
        let single = match f.key {
            "clock" => &mut self.clock,
            "numbering" => &mut self.numbering,
            "unknown" => &mut self.unknown,
            "defaults" => &mut self.defaults,
            "numbers" => {
                let expected = "an array of tables ([[numbers]])";
                match tables(src, f, expected, d) {
                    Some(list) => {
                        self.numbers
                            .extend(list.into_iter().map(|(table, pos)| Section {
                                src,
                                table,
                                name: "numbers",
                                pos,
                            }))
                    }
                    None => self.broken = true,
                }
                return;
            }
            _ => {
                self.named(src, f, d);
                return;
            }
        };
        let Some(table) = d.table(f, &format!("a table ([{}])", f.key)) else {
            return;
        };
        if let Some(first) = single {
            d.error(
                &f.key_pos,
                format!("[{}] is declared twice; first at {}", f.key, first.pos),
            );
            return;
        }
        *single = Some(Section {
            src,
            table,
            name: f.key,
            pos: f.key_pos.clone(),
        });
    }

    /// `[nodes.NAME]` and the other named sections.
    fn named(&mut self, src: &'a Src, f: &Field<'a>, d: &mut Diags) {
        let registry = match f.key {
            "nodes" => &mut self.nodes,
            "schedules" => &mut self.schedules,
            "calendars" => &mut self.calendars,
            "lists" => &mut self.lists,
            "queues" => &mut self.queues,
            "subcentres" => &mut self.subcentres,
            _ => return,
        };
        let expected = format!("a table of {}s ([{}.NAME])", registry.word, f.key);
        let Some(table) = d.table(f, &expected) else {
            self.broken = true;
            return;
        };
        let items = Fields::of(src, table, String::new(), f.key_pos.clone());
        for item in items.iter() {
            if !is_name(item.key) {
                d.error(
                    &item.key_pos,
                    format!(
                        "{} name `{}` is not valid; expected lower-case letters, digits and `-`",
                        registry.word, item.key
                    ),
                );
            }
            match item.item.as_table_like() {
                Some(table) => registry.declare(
                    Section {
                        src,
                        table,
                        name: item.key,
                        pos: item.key_pos.clone(),
                    },
                    d,
                ),
                None => {
                    self.broken = true;
                    d.error(
                        &item.pos,
                        format!(
                            "{} `{}` must be a table, found {}",
                            registry.word,
                            item.key,
                            describe(item.item)
                        ),
                    );
                }
            }
        }
    }
}
