//! What a Rust cell declares, read with rust-analyzer's parser (the one evcxr uses).
//!
//! evcxr keeps every top-level `let` of a cell as a variable, and to keep one it asks
//! rust-analyzer for its type; the first such question of an evaluator loads the standard
//! library (1.5 to 2 s). A cell that declares nothing itself (no `let`, no item, no value at
//! its end) needs its copies of helper variables only while it runs, so they and the cell can
//! go in one block, which evcxr runs without keeping anything, as it documents for braces.

use ra_ap_syntax::ast::{self, HasModuleItem};
use ra_ap_syntax::{AstNode, Edition, SourceFile, SyntaxKind, SyntaxToken, T};

/// Macros a statement may call and still declare nothing (any other macro might expand to
/// a `let` or an item, which a block would hide from later cells).
const PLAIN_MACROS: &[&str] = &[
    "print",
    "println",
    "eprint",
    "eprintln",
    "dbg",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "panic",
    "todo",
    "unimplemented",
    "write",
    "writeln",
    "format",
    "vec",
];

/// Whether `code` is statements only (ending in `;`, or a loop or an `if` without `else`),
/// declaring no variable or item and calling no macro but the plain ones.
pub fn declares_nothing(code: &str) -> bool {
    if code.trim_start().starts_with(':') {
        return false;
    }
    let wrapped = format!("fn smartnb_cell() {{\n{code}\n}}");
    let parsed = SourceFile::parse(&wrapped, Edition::Edition2024);
    if !parsed.errors().is_empty() {
        return false;
    }
    let file = parsed.tree();
    let mut items = file.items();
    let (Some(ast::Item::Fn(function)), None) = (items.next(), items.next()) else {
        return false;
    };
    let Some(body) = function.body().and_then(|b| b.stmt_list()) else {
        return false;
    };
    // A cell may end in a loop or an `if` without `else` (their value is `()`), not in a value.
    if let Some(tail) = body.tail_expr() {
        let unit = match &tail {
            ast::Expr::ForExpr(_) | ast::Expr::WhileExpr(_) => true,
            ast::Expr::IfExpr(branch) => branch.else_branch().is_none(),
            _ => false,
        };
        if !unit || !only_plain_macros(&tail) {
            return false;
        }
    }
    body.statements().all(|statement| match statement {
        ast::Stmt::ExprStmt(expression) => expression.expr().is_some_and(|e| only_plain_macros(&e)),
        ast::Stmt::LetStmt(_) | ast::Stmt::Item(_) => false,
    })
}

/// Whether evcxr will ask rust-analyzer to infer a type for `code` (evcxr commands, the
/// lines starting with `:`, aside): some top-level `let` binds a variable without a type
/// written out that evcxr can use as it is (a single name with a type free of `_` and `impl
/// Trait`). Such a cell needs rust-analyzer to know the real standard library; code that
/// does not parse is counted as needing it.
pub fn infers_types(code: &str) -> bool {
    let rust: Vec<&str> = code
        .lines()
        .filter(|line| !line.trim_start().starts_with(':'))
        .collect();
    let wrapped = format!("fn smartnb_cell() {{\n{}\n}}", rust.join("\n"));
    let parsed = SourceFile::parse(&wrapped, Edition::Edition2024);
    if !parsed.errors().is_empty() {
        return true;
    }
    let file = parsed.tree();
    let Some(body) = file.items().find_map(|item| match item {
        ast::Item::Fn(function) => function.body().and_then(|b| b.stmt_list()),
        _ => None,
    }) else {
        return true;
    };
    body.statements().any(|statement| match statement {
        ast::Stmt::LetStmt(binding) => !written_out(&binding),
        _ => false,
    })
}

/// Whether a `let` names one variable with a type evcxr keeps as written.
fn written_out(binding: &ast::LetStmt) -> bool {
    let single_name =
        matches!(binding.pat(), Some(ast::Pat::IdentPat(ref name)) if name.pat().is_none());
    let Some(ty) = binding.ty() else {
        return false;
    };
    single_name
        && !ty.syntax().descendants().any(|node| {
            matches!(
                node.kind(),
                SyntaxKind::INFER_TYPE | SyntaxKind::IMPL_TRAIT_TYPE
            )
        })
}

/// Whether every macro called in `expression` is a plain one, those called inside another
/// macro's arguments (which the parser leaves as tokens) included.
fn only_plain_macros(expression: &ast::Expr) -> bool {
    let tokens: Vec<SyntaxToken> = expression
        .syntax()
        .descendants_with_tokens()
        .filter_map(|element| element.into_token())
        .filter(|token| !token.kind().is_trivia())
        .collect();
    tokens.windows(3).all(|window| {
        let [name, bang, open] = window else {
            return true;
        };
        let called = name.kind() == SyntaxKind::IDENT
            && bang.kind() == T![!]
            && matches!(open.kind(), T!['('] | T!['['] | T!['{']);
        !called || PLAIN_MACROS.contains(&name.text())
    })
}

#[cfg(test)]
mod tests {
    use super::{declares_nothing, infers_types};

    #[test]
    fn only_a_let_without_a_usable_type_needs_inference() {
        for code in [
            "let n = response[\"total\"].as_u64();",
            "println!(\"x\"); let kept = vec![1];",
            "let v: Vec<_> = Vec::new();",
            "let it: impl Fn() = || ();",
            "let (a, b): (u8, u8) = (1, 2);",
            ":dep regex = \"1\"\nlet re = regex::Regex::new(\"a\");",
            "let broken = ;",
        ] {
            assert!(infers_types(code), "{code}");
        }
        for code in [
            "println!(\"{status}\");",
            "let status: u16 = 200;\nlet response: serde_json::Value = smartnb_json(\"null\");",
            "{ let inner = 1; println!(\"{inner}\"); }",
            "fn twice(x: u16) -> u16 { let y = x; y * 2 }",
            "for x in [1, 2] { let y = x; println!(\"{y}\"); }",
            ":dep serde_json = \"1\"\nuse smartnb_cells::smart;\nresponse[\"id\"]",
        ] {
            assert!(!infers_types(code), "{code}");
        }
    }

    #[test]
    fn statements_that_declare_nothing_may_go_in_a_block() {
        for code in [
            "println!(\"{} {}\", status, response[\"resourceType\"]);",
            "for entry in response[\"entry\"].as_array().unwrap() {\n    println!(\"{}\", entry);\n}",
            "assert_eq!(status, 200);\nprintln!(\"{status}\");",
            "if status == 200 { println!(\"ok\"); }",
        ] {
            assert!(declares_nothing(code), "{code}");
        }
    }

    #[test]
    fn a_declaration_a_value_or_an_unknown_macro_stays_at_the_top() {
        for code in [
            "let n = response[\"total\"].as_u64();",
            "println!(\"x\");\nlet kept = 1;",
            "fn twice(x: u16) -> u16 { x * 2 }",
            "struct Reading { value: f64 }",
            "use std::collections::HashMap;",
            "status + 1",
            "response[\"resourceType\"]",
            "my_macro!(status);",
            "println!(\"{}\", inner!(status));",
            ":dep regex = \"1\"",
            "println!(\"unclosed);",
            "for x in [1, 2] { let y = x; println!(\"{y}\"); } 5",
            "if status == 200 { 1 } else { 2 }",
            "loop { break 5 }",
        ] {
            assert!(!declares_nothing(code), "{code}");
        }
    }
}
