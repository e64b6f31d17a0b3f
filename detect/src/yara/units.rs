//! Rule files cut into the units a value is scanned with.
//!
//! A yara-x scan of rules that import a module (`pe`, `math`, ...) builds that module's
//! whole structure for the scanned data, on every scan: for `pe` that is most of the
//! cost of scanning a 500-byte command line, even when no rule that would read it is
//! near a match. Yet most rules of such files never name the module (signature-base's
//! `gen_github_net_redteam_tools_guids.yar`: 316 rules, one reads `pe`). So a file that
//! imports modules is cut in two units: the rules that name no imported module,
//! without the imports, and the rules that do, with them. Each unit is compiled alone
//! and has its own atoms in the prefilter, so a value that holds only strings of the
//! first kind is scanned without any module. A file with a `global` rule stays whole
//! (such a rule applies to every rule of the file), and so does one whose units do not
//! compile apart (a rule that names a rule of the other unit).

use yara_x_parser::ast::{RuleFlags, AST};
use yara_x_parser::cst::{CSTStream, Event, SyntaxKind};
use yara_x_parser::Parser;

/// `source`'s import statements (when `imports`) and the rule declarations whose flag
/// in `keep` is set (one flag per declaration, in file order), one per line; `None`
/// when the declarations cannot be read so (fewer or more than the flags).
pub(super) fn kept_declarations(source: &str, keep: &[bool], imports: bool) -> Option<String> {
    let mut declarations = keep.iter();
    let mut out = String::new();
    for event in CSTStream::from(Parser::new(source.as_bytes())) {
        let Event::Begin { kind, span } = event else {
            continue;
        };
        let kept = match kind {
            SyntaxKind::IMPORT_STMT => imports,
            SyntaxKind::RULE_DECL => *declarations.next()?,
            _ => false,
        };
        if kept {
            out.push_str(source.get(span.range())?);
            out.push('\n');
        }
    }
    declarations.next().is_none().then_some(out)
}

/// The modules `source` imports, and the text of each rule declaration, in file order;
/// `None` when it cannot be read so.
pub(super) fn imports_and_declarations(source: &str) -> Option<(Vec<String>, Vec<&str>)> {
    let mut imports = Vec::new();
    let mut declarations = Vec::new();
    for event in CSTStream::from(Parser::new(source.as_bytes())) {
        let Event::Begin { kind, span } = event else {
            continue;
        };
        match kind {
            SyntaxKind::IMPORT_STMT => {
                let text = source.get(span.range())?;
                let name = text.split('"').nth(1)?;
                imports.push(name.to_string());
            }
            SyntaxKind::RULE_DECL => declarations.push(source.get(span.range())?),
            _ => {}
        }
    }
    Some((imports, declarations))
}

/// Whether the condition of declaration `text` (what follows its last `condition`)
/// names one of the modules `imports`: its metadata may say "pe" in prose. (A
/// condition holding the word `condition` in a string may be read short: the part
/// then fails to compile without the import, and the file is taken whole.)
pub(super) fn names_a_module(text: &str, imports: &[String]) -> bool {
    let condition = text.rsplit_once("condition").map_or(text, |(_, c)| c);
    imports.iter().any(|module| names(condition, module))
}

/// Whether `text` holds `word` with no letter, digit or `_` on either side (anywhere,
/// strings and comments included: a rule that merely might name a module is taken as
/// naming it).
fn names(text: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(word).any(|(at, _)| {
        !ident(text[..at].chars().next_back()) && !ident(text[at + word.len()..].chars().next())
    })
}

/// The units `source` is scanned in: the file whole, or (when it imports modules that
/// some of its rules never name) the rules naming no imported module without the
/// imports, then the rest with them. Whether each unit compiles is for the caller to
/// try.
pub(super) fn scan_units(source: &str) -> Vec<String> {
    let whole = || vec![source.to_string()];
    let Some((imports, declarations)) = imports_and_declarations(source) else {
        return whole();
    };
    if imports.is_empty() {
        return whole();
    }
    let tree = AST::from(source);
    if tree.rules().any(|r| r.flags.contains(RuleFlags::Global)) {
        return whole();
    }
    let modular: Vec<bool> = declarations
        .iter()
        .map(|text| names_a_module(text, &imports))
        .collect();
    if modular.iter().all(|m| *m) || !modular.iter().any(|m| *m) {
        return whole();
    }
    let lean: Vec<bool> = modular.iter().map(|m| !m).collect();
    match (
        kept_declarations(source, &lean, false),
        kept_declarations(source, &modular, true),
    ) {
        (Some(lean), Some(modular)) => vec![lean, modular],
        _ => whole(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
import "pe"
import "math"

rule plain { strings: $a = "beacon" condition: $a }
rule reads_pe { strings: $a = "loader" condition: $a and pe.number_of_sections > 2 }
// a comment naming pe.
rule entropy { condition: math.entropy(0, filesize) > 7.0 }
rule also_plain : tag { meta: author = "x" strings: $b = { 4D 5A 90 } condition: $b }
"#;

    #[test]
    fn rules_that_name_no_module_are_cut_apart_from_the_imports() {
        let units = scan_units(FILE);
        assert_eq!(units.len(), 2);
        assert!(!units[0].contains("import"));
        assert!(units[0].contains("rule plain") && units[0].contains("rule also_plain"));
        assert!(!units[0].contains("reads_pe") && !units[0].contains("entropy"));
        assert!(units[1].starts_with("import \"pe\"\nimport \"math\"\n"));
        assert!(units[1].contains("rule reads_pe") && units[1].contains("rule entropy"));
        assert!(!units[1].contains("rule plain"));
    }

    #[test]
    fn files_that_cannot_be_cut_stay_whole() {
        // No imports; every rule names a module; none does; a global rule.
        for source in [
            "rule a { strings: $a = \"x\" condition: $a }",
            "import \"pe\"\nrule a { condition: pe.is_pe }",
            "import \"pe\"\nrule a { strings: $a = \"x\" condition: $a }",
            "import \"pe\"\nglobal rule g { condition: filesize < 10 }\nrule a { condition: pe.is_pe }\nrule b { strings: $a = \"x\" condition: $a }",
        ] {
            assert_eq!(scan_units(source), [source.to_string()], "{source}");
        }
    }

    #[test]
    fn a_word_is_named_only_whole() {
        assert!(names("x and pe.is_pe", "pe"));
        assert!(names("(pe .is_pe)", "pe"));
        assert!(!names("$pipe = \"type\" condition: $pipe", "pe"));
        assert!(!names("open_pe_file", "pe"));
    }
}
