//! Parser checks: short forms expand to the long form with the tag's position.

use expect_test::{Expect, expect};

use crate::diag::Diagnostics;
use crate::node::{Kind, Node};
use crate::parse::parse;

/// Prints a tree as `line:col kind` lines, indented by depth.
fn show(node: &Node, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let pos = format!("{}:{}", node.span.start.line, node.span.start.col);
    match &node.kind {
        Kind::Map(map) => {
            out.push_str(&format!("{pad}{pos} map\n"));
            for e in map.iter() {
                out.push_str(&format!(
                    "{pad}  {}:{} key {}\n",
                    e.key_span.start.line, e.key_span.start.col, e.key
                ));
                show(&e.value, depth + 2, out);
            }
        }
        Kind::Seq(items) => {
            out.push_str(&format!("{pad}{pos} list\n"));
            items.iter().for_each(|n| show(n, depth + 1, out));
        }
        Kind::String(s) => out.push_str(&format!("{pad}{pos} string {s:?}\n")),
        Kind::Number(n) => out.push_str(&format!("{pad}{pos} number {n}\n")),
        Kind::Bool(b) => out.push_str(&format!("{pad}{pos} bool {b}\n")),
        Kind::Null => out.push_str(&format!("{pad}{pos} null\n")),
    }
}

fn check(text: &str, expect: Expect) {
    let mut diags = Diagnostics::default();
    let mut out = String::new();
    if let Some(root) = parse(text, &mut diags) {
        show(&root, 0, &mut out);
    }
    for d in diags.finish() {
        out.push_str(&format!("{}:{}: {}\n", d.span.start.line, d.span.start.col, d.message));
    }
    expect.assert_eq(&out);
}

#[test]
fn yaml_short_forms() {
    check(
        "A: !Ref X\nB: !GetAtt Lb.DNSName\nC: !GetAtt [Db, Endpoint.Address]\nD: !Sub '${X}'\nE: 080\nF: '1'\nG: yes\n",
        expect![[r#"
            1:1 map
              1:1 key A
                1:4 map
                  1:4 key Ref
                    1:4 string "X"
              2:1 key B
                2:4 map
                  2:4 key Fn::GetAtt
                    2:4 list
                      2:4 string "Lb"
                      2:4 string "DNSName"
              3:1 key C
                3:4 map
                  3:4 key Fn::GetAtt
                    3:4 list
                      3:13 string "Db"
                      3:17 string "Endpoint.Address"
              4:1 key D
                4:4 map
                  4:4 key Fn::Sub
                    4:4 string "${X}"
              5:1 key E
                5:4 number 080
              6:1 key F
                6:4 string "1"
              7:1 key G
                7:4 string "yes"
        "#]],
    );
}

#[test]
fn yaml_condition_and_core_tags() {
    check(
        "A: !Condition IsProd\nB: !!str 42\nC: !If [C, !Ref AWS::NoValue, ~]\n",
        expect![[r#"
            1:1 map
              1:1 key A
                1:4 map
                  1:4 key Condition
                    1:4 string "IsProd"
              2:1 key B
                2:4 string "42"
              3:1 key C
                3:4 map
                  3:4 key Fn::If
                    3:4 list
                      3:9 string "C"
                      3:12 map
                        3:12 key Ref
                          3:12 string "AWS::NoValue"
                      3:31 null
        "#]],
    );
}

#[test]
fn json_positions() {
    check(
        "{\n  \"A\": {\"Ref\": \"X\"},\n  \"B\": [1, true, null]\n}\n",
        expect![[r#"
            1:1 map
              2:3 key A
                2:8 map
                  2:9 key Ref
                    2:16 string "X"
              3:3 key B
                3:8 list
                  3:9 number 1
                  3:12 bool true
                  3:18 null
        "#]],
    );
}

#[test]
fn aliases_are_expanded_but_bounded() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
            p = if i == 0 { "a".to_string() } else { format!("b{}", i - 1) }
        ));
    }
    let mut diags = Diagnostics::default();
    assert!(parse(&bomb, &mut diags).is_none());
    assert!(diags.finish()[0].message.contains("too many nodes"));
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
    let mut diags = Diagnostics::default();
    assert!(parse(&deep, &mut diags).is_none());
    let deep_json = format!("{{\"a\": {}1{}}}", "[".repeat(400), "]".repeat(400));
    assert!(parse(&deep_json, &mut diags).is_none());
}
