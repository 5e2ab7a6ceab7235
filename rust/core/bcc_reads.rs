//! BCC's implicit kernel reads: `task->real_parent->tgid` in a kprobe reads kernel memory, which
//! a BPF program may only do through `bpf_probe_read_kernel()`. BCC rewrites such expressions
//! with clang's AST; so does bpfkit, from the AST clang prints as JSON (`-ast-dump=json`, see
//! [`crate::core::compile::syntax_tree`]) of the translated source.
//!
//! What is rewritten: every load (clang's `LValueToRValue` conversion) of an lvalue that lies in
//! kernel memory, that is, a member chain (`.`, `->`, `[i]` into an array member) that goes
//! through `->` on a pointer to a kernel struct or union (a record of `vmlinux.h`, not one the
//! program defines, and not a program context such as `struct pt_regs` or `struct __sk_buff`,
//! which the verifier lets the program read directly). The load `E` becomes `__bcc_rd(E)`, a
//! statement expression of `bcc/helpers.h` that copies `E` with `bpf_probe_read_kernel` from
//! `&(E)`: an address computation, which CO-RE relocates like any field access (the records of
//! `vmlinux.h` are `preserve_access_index`). Loads nest: `task->real_parent->tgid` becomes
//! `__bcc_rd(__bcc_rd(task->real_parent)->tgid)`. A bitfield member is read with libbpf's
//! `BPF_CORE_READ_BITFIELD_PROBED`. Addresses (`&sk->field`, an array member passed as a
//! pointer) and `sizeof`/`typeof` operands are not loads and stay as they are.
//!
//! Only text the user wrote is rewritten: expressions spelled in the source itself, or in the
//! arguments of a macro call in it (`counts.increment(task->tgid)`); a load inside the body of
//! a macro is left alone.

use std::collections::HashSet;

use serde_json::Value;

use crate::core::error::{Error, Result};

/// The file clang names the source it read from stdin.
const MAIN_FILE: &str = "<stdin>";

/// Records whose pointers are program contexts (a tracepoint's among them) or helper results the
/// verifier lets a program read directly: never rewritten.
pub(crate) fn direct_record(name: &str) -> bool {
    matches!(name, "pt_regs" | "user_pt_regs" | "__sk_buff" | "xdp_md" | "sk_msg_md" | "sk_reuseport_md")
        || name.starts_with("bpf_")
        || name.starts_with("trace_event_raw_")
}

/// Where a node begins or ends, as spelled: a byte offset into the main file, or None when it is
/// spelled elsewhere (a header, a macro's body).
type At = Option<usize>;

/// The parts of an AST node the rewrite looks at.
#[derive(Debug, Default)]
struct Node {
    kind: String,
    cast: String,
    /// A unary or binary operator's (`*`, `&`, `+`).
    opcode: String,
    arrow: bool,
    /// The member's declaration (MemberExpr).
    member: String,
    /// The declaration a DeclRefExpr names, and its name.
    refdecl: String,
    refname: String,
    id: String,
    bitfield: bool,
    /// The type, desugared where clang gives both.
    ty: String,
    /// Begin offset, end offset and the length of the last token.
    begin: At,
    end: At,
    end_len: usize,
    kids: Vec<Node>,
}

/// Reads clang's JSON, keeping track of the file each location is in: clang names a location's
/// file only when it differs from the previous location's, in document order.
struct Reader<'s> {
    last_file: String,
    /// The source clang read (the main file).
    src: &'s str,
}

impl Reader<'_> {
    /// A bare location object (`{"offset": .., "file": .., "tokLen": ..}`).
    fn bare(&mut self, v: &Value) -> (Option<usize>, usize, bool) {
        if let Some(f) = v.get("file").and_then(Value::as_str) {
            self.last_file = f.to_string();
        }
        let off = v.get("offset").and_then(Value::as_u64).map(|o| o as usize);
        let len = v.get("tokLen").and_then(Value::as_u64).unwrap_or(0) as usize;
        let in_main = self.last_file == MAIN_FILE;
        (off.filter(|_| in_main), len, v.get("isMacroArgExpansion").and_then(Value::as_bool) == Some(true))
    }

    /// A location: bare, or a macro's (`spellingLoc` and `expansionLoc`). A location inside a
    /// macro counts when it is spelled in a macro argument in the main file, or when the macro
    /// is an object-like one used in the main file (`inet->inet_rcv_saddr`, whose member is
    /// the kernel's `#define inet_rcv_saddr sk.__sk_common.skc_rcv_saddr`): then it is the
    /// macro's name, which the rewrite may wrap whole.
    fn location(&mut self, v: &Value) -> (At, usize) {
        let Some(obj) = v.as_object() else { return (None, 0) };
        if obj.contains_key("spellingLoc") || obj.contains_key("expansionLoc") {
            let (mut spelled, mut len, mut arg) = (None, 0, false);
            let (mut expanded, mut expanded_len) = (None, 0);
            for (k, sub) in obj {
                match k.as_str() {
                    "spellingLoc" => (spelled, len, _) = self.bare(sub),
                    "expansionLoc" => (expanded, expanded_len, arg) = self.bare(sub),
                    _ => {}
                }
            }
            if arg {
                return (spelled, len);
            }
            let object_like = expanded.is_some_and(|at| {
                self.src.get(at + expanded_len..).is_some_and(|rest| !rest.trim_start().starts_with('('))
            });
            return if object_like { (expanded, expanded_len) } else { (None, 0) };
        }
        let (off, len, _) = self.bare(v);
        (off, len)
    }

    fn node(&mut self, v: &Value, bitfields: &mut HashSet<String>) -> Node {
        let mut n = Node::default();
        let Some(obj) = v.as_object() else { return n };
        // Document order: locations are named relative to the ones before them.
        for (k, sub) in obj {
            match k.as_str() {
                "id" => n.id = sub.as_str().unwrap_or_default().to_string(),
                "kind" => n.kind = sub.as_str().unwrap_or_default().to_string(),
                "castKind" => n.cast = sub.as_str().unwrap_or_default().to_string(),
                "opcode" => n.opcode = sub.as_str().unwrap_or_default().to_string(),
                "isArrow" => n.arrow = sub.as_bool() == Some(true),
                "isBitfield" => n.bitfield = sub.as_bool() == Some(true),
                "referencedMemberDecl" => n.member = sub.as_str().unwrap_or_default().to_string(),
                "referencedDecl" => {
                    n.refdecl = sub.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    n.refname = sub.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                    self.skip(sub);
                }
                "type" => {
                    let t = sub.get("desugaredQualType").or_else(|| sub.get("qualType"));
                    n.ty = t.and_then(Value::as_str).unwrap_or_default().to_string();
                }
                "loc" => {
                    self.location(sub);
                }
                "range" => {
                    if let Some(r) = sub.as_object() {
                        for (rk, rv) in r {
                            match rk.as_str() {
                                "begin" => n.begin = self.location(rv).0,
                                "end" => (n.end, n.end_len) = self.location(rv),
                                _ => {}
                            }
                        }
                    }
                }
                "inner" => {
                    if let Some(a) = sub.as_array() {
                        n.kids = a.iter().map(|c| self.node(c, bitfields)).collect();
                    }
                }
                _ => self.skip(sub),
            }
        }
        if n.kind == "FieldDecl" && n.bitfield {
            bitfields.insert(n.id.clone());
        }
        n
    }

    /// Follows the locations inside a value the rewrite does not otherwise read.
    fn skip(&mut self, v: &Value) {
        match v {
            Value::Object(o) => {
                if o.contains_key("offset") {
                    self.bare(v);
                    return;
                }
                for sub in o.values() {
                    self.skip(sub);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.skip(x)),
            _ => {}
        }
    }
}

/// The record a pointer type points to, if it is `struct NAME *` or `union NAME *` (qualifiers
/// allowed).
fn pointee_record(ty: &str) -> Option<&str> {
    let t = ty.trim().strip_suffix('*')?.trim_end();
    let t = t.strip_suffix("const").unwrap_or(t).trim_end();
    let t = t.strip_suffix("volatile").unwrap_or(t).trim_end();
    let t = t.trim_start_matches("const ").trim_start_matches("volatile ");
    let name = t.strip_prefix("struct ").or_else(|| t.strip_prefix("union "))?.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

struct Rewrite<'a> {
    user_records: &'a HashSet<String>,
    /// Variables that hold a value read from kernel memory: a pointer among them points into
    /// the kernel whatever its type says (`my_q = (struct partial *)task->se.cfs_rq`), as BCC
    /// follows them.
    kernel_vars: HashSet<String>,
    bitfields: &'a HashSet<String>,
    /// (begin, end) of each load to wrap, and the bitfield loads' (begin, base end, member, end).
    loads: Vec<(usize, usize)>,
    /// (begin, end, new name) of each legacy `bpf_probe_read(_str)` call's callee that reads
    /// kernel memory: it becomes `bpf_probe_read_kernel(_str)`.
    renames: Vec<(usize, usize, &'static str)>,
    bitfield_loads: Vec<(usize, usize, usize, usize)>,
}

impl Rewrite<'_> {
    fn kernel_pointer(&self, ty: &str) -> bool {
        // A CO-RE flavour (`NAME___x`) the program defines is a copy of a kernel struct.
    pointee_record(ty).is_some_and(|r| !direct_record(r) && (r.contains("___") || !self.user_records.contains(r)))
    }

    /// Whether `e` designates kernel memory.
    fn kernel_lvalue(&self, e: &Node) -> bool {
        match e.kind.as_str() {
            "ParenExpr" => e.kids.first().is_some_and(|k| self.kernel_lvalue(k)),
            "MemberExpr" if e.arrow => e.kids.first().is_some_and(|b| self.kernel_pointer(&b.ty) || self.kernel_value(b)),
            "MemberExpr" => e.kids.first().is_some_and(|k| self.kernel_lvalue(k)),
            "ArraySubscriptExpr" => e.kids.iter().any(|k| self.points_into_kernel(k)),
            // `*(&sk->field - 2)`: a dereference of an address computed from a kernel lvalue's.
            "UnaryOperator" if e.opcode == "*" => e.kids.first().is_some_and(|k| self.points_into_kernel(k)),
            _ => false,
        }
    }

    /// Whether pointer expression `p` is computed from the address of kernel memory (`&x->f`,
    /// an array member of a kernel struct, through casts and pointer arithmetic). A pointer
    /// held in a variable is not followed: where it came from is not in the expression.
    fn points_into_kernel(&self, p: &Node) -> bool {
        let first = || p.kids.first();
        match p.kind.as_str() {
            "UnaryOperator" if p.opcode == "&" => first().is_some_and(|k| self.kernel_lvalue(k)),
            "ImplicitCastExpr" if p.cast == "ArrayToPointerDecay" => first().is_some_and(|k| self.kernel_lvalue(k)),
            // An array of kernel pointers handed over by pointer (`struct scatterlist **sgs`, as
            // virtqueue_add_sgs takes): its elements are in kernel memory. (A local array of them
            // decays from an array type, not this.) A stack or map address taken for one reads
            // the same through bpf_probe_read_kernel.
            // A pointer to a kernel struct (`((u8 *)tcp)[13]`, as BCC's tcpdrop reads its
            // header's flags) or one read from the kernel points into it too.
            "ImplicitCastExpr" if p.cast == "LValueToRValue" => {
                self.kernel_pointer(&p.ty)
                    || p.ty.trim_end().strip_suffix('*').is_some_and(|t| self.kernel_pointer(t))
                    || self.kernel_value(p)
            }
            "ParenExpr" | "CStyleCastExpr" | "ImplicitCastExpr" => first().is_some_and(|k| self.points_into_kernel(k)),
            "BinaryOperator" if matches!(p.opcode.as_str(), "+" | "-") => p.kids.iter().any(|k| self.points_into_kernel(k)),
            _ => false,
        }
    }

    /// Whether expression `e` is a value read from kernel memory, or a variable holding one.
    fn kernel_value(&self, e: &Node) -> bool {
        match e.kind.as_str() {
            "ImplicitCastExpr" if e.cast == "LValueToRValue" => e.kids.first().is_some_and(|k| {
                self.kernel_lvalue(k) || (k.kind == "DeclRefExpr" && self.kernel_vars.contains(&k.refdecl))
            }),
            "ParenExpr" | "CStyleCastExpr" | "ImplicitCastExpr" => e.kids.first().is_some_and(|k| self.kernel_value(k)),
            _ => false,
        }
    }

    /// Marks the variables initialised or assigned from kernel values; true if any was new.
    fn mark(&mut self, n: &Node) -> bool {
        let mut new = false;
        match n.kind.as_str() {
            "VarDecl" if n.kids.last().is_some_and(|init| self.kernel_value(init)) => {
                new |= self.kernel_vars.insert(n.id.clone());
            }
            "BinaryOperator" if n.opcode == "=" => {
                if let [lhs, rhs] = &n.kids[..] {
                    if lhs.kind == "DeclRefExpr" && self.kernel_value(rhs) {
                        new |= self.kernel_vars.insert(lhs.refdecl.clone());
                    }
                }
            }
            _ => {}
        }
        for k in &n.kids {
            new |= self.mark(k);
        }
        new
    }

    /// A call of the legacy `bpf_probe_read(dst, size, src)` or `bpf_probe_read_str` whose
    /// source is kernel memory (an address computed from a kernel lvalue, a pointer to a kernel
    /// struct, a pointer read from the kernel) names the kernel form of the helper instead. Other
    /// sources (a syscall's user pointer, an address of unknown origin) keep the legacy helper,
    /// which reads either where the two address spaces do not overlap (x86, arm64).
    fn probe_read(&mut self, call: &Node) {
        let [callee, _, _, src] = &call.kids[..] else { return };
        let mut f = callee;
        while f.kind == "ImplicitCastExpr" || f.kind == "ParenExpr" {
            let Some(k) = f.kids.first() else { return };
            f = k;
        }
        let new = match (f.kind.as_str(), f.refname.as_str()) {
            ("DeclRefExpr", "bpf_probe_read") => "bpf_probe_read_kernel",
            ("DeclRefExpr", "bpf_probe_read_str") => "bpf_probe_read_kernel_str",
            _ => return,
        };
        let (Some(b), Some(e)) = (f.begin, f.end) else { return };
        if b != e || !self.kernel_source(src) {
            return; // the name is not spelled as one token of the program's own text
        }
        self.renames.push((b, e + f.end_len, new));
    }

    /// Whether pointer expression `p` points into kernel memory.
    fn kernel_source(&self, p: &Node) -> bool {
        self.points_into_kernel(p)
            || self.kernel_value(p)
            || (p.kind.ends_with("CastExpr") || p.kind == "ParenExpr") && p.kids.first().is_some_and(|k| self.kernel_source(k))
            || self.kernel_pointer(&p.ty)
    }

    fn visit(&mut self, n: &Node) {
        if n.kind == "CallExpr" {
            self.probe_read(n);
        }
        if n.kind == "ImplicitCastExpr" && n.cast == "LValueToRValue" {
            if let Some(e) = n.kids.first() {
                if self.kernel_lvalue(e) {
                    self.load(e);
                }
            }
        }
        for k in &n.kids {
            self.visit(k);
        }
    }

    fn load(&mut self, mut e: &Node) {
        // `(x)` reads what `x` reads; the parentheses may be a macro's (`(_k)` in its body).
        while e.kind == "ParenExpr" {
            let Some(k) = e.kids.first() else { return };
            e = k;
        }
        let (Some(b), Some(member)) = (e.begin, e.end) else { return };
        let end = member + e.end_len;
        if e.kind == "MemberExpr" && self.bitfields.contains(&e.member) {
            // The member's name is the expression's last token.
            if let (true, Some(base)) = (e.arrow, e.kids.first()) {
                if let Some(base_end) = base.end {
                    self.bitfield_loads.push((b, base_end + base.end_len, member, end));
                }
            }
            return;
        }
        self.loads.push((b, end));
    }
}

/// `src` (the translated source clang read from stdin) with its kernel reads made explicit,
/// given clang's JSON AST of it.
pub fn rewrite(src: &str, ast_json: &str) -> Result<String> {
    use serde_json::value::RawValue;
    let bad = |e: serde_json::Error| Error::Internal(format!("reading clang's AST: {e}"));
    // Most of the AST is the headers' declarations: only function definitions are read in full;
    // of the others, only the file their last location names, which the next one's locations
    // are relative to.
    let unit: std::collections::HashMap<&str, &RawValue> = serde_json::from_str(ast_json).map_err(bad)?;
    let inner: Vec<&RawValue> = match unit.get("inner") {
        Some(v) => serde_json::from_str(v.get()).map_err(bad)?,
        None => Vec::new(),
    };
    let mut bitfields = HashSet::new();
    let mut reader = Reader { last_file: String::new(), src };
    let mut functions = Vec::new();
    for decl in inner {
        let text = decl.get();
        // clang pretty-prints: the kind is among the first few keys, with whitespace around.
        let head: String = text.chars().take(200).filter(|c| !c.is_whitespace()).collect();
        let record = head.contains("\"kind\":\"RecordDecl\"") && text.contains("\"isBitfield\"");
        if head.contains("\"kind\":\"FunctionDecl\"") || record {
            let v: Value = serde_json::from_str(text).map_err(bad)?;
            let n = reader.node(&v, &mut bitfields);
            if n.kind == "FunctionDecl" && n.end.is_some() {
                functions.push(n);
            }
        } else if let Some(f) = last_file(text) {
            reader.last_file = f;
        }
    }
    let user_records: HashSet<String> = crate::core::compile::defined_structs(src).into_iter().collect();
    let mut rw = Rewrite {
        user_records: &user_records,
        kernel_vars: HashSet::new(),
        bitfields: &bitfields,
        loads: Vec::new(),
        renames: Vec::new(),
        bitfield_loads: Vec::new(),
    };
    // Until no new variable is found: one may take its value from another.
    for _ in 0..8 {
        let mut new = false;
        for f in &functions {
            new |= rw.mark(f);
        }
        if !new {
            break;
        }
    }
    for f in &functions {
        rw.visit(f);
    }
    Ok(apply(src, rw.loads, rw.bitfield_loads, rw.renames))
}

/// The file the last location in a declaration's JSON names, if any names one (`"file"` keys
/// of locations, not of `includedFrom`).
fn last_file(text: &str) -> Option<String> {
    const KEY: &str = "\"file\"";
    let mut end = text.len();
    while let Some(at) = text[..end].rfind(KEY) {
        end = at;
        let before = text[..at].trim_end();
        let included = before.strip_suffix('{').map(str::trim_end).and_then(|b| b.strip_suffix(':')).map(str::trim_end);
        if included.is_some_and(|b| b.ends_with("\"includedFrom\"")) {
            continue;
        }
        let rest = text[at + KEY.len()..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
        return serde_json::from_str(&format!("\"{}", &rest[..closing_quote(rest)? + 1])).ok();
    }
    None
}

/// The index of the quote that ends a JSON string whose body starts `s`.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Writes the rewrite: `__bcc_rd(` before and `)` after each load (an outer load's opening
/// before an inner one's at the same place, its closing after), and for a bitfield
/// `__bcc_rdbf(base, member)`.
fn apply(src: &str, mut loads: Vec<(usize, usize)>, mut bitfields: Vec<(usize, usize, usize, usize)>, renames: Vec<(usize, usize, &'static str)>) -> String {
    loads.sort_unstable();
    loads.dedup();
    bitfields.sort_unstable();
    bitfields.dedup();
    // (position, rank, text, bytes replaced): at one position, closings (inner first) before
    // openings (outer first).
    let mut edits: Vec<(usize, (u8, i64), &str, usize)> = Vec::new();
    for &(b, e) in &loads {
        if b < e && e <= src.len() {
            edits.push((b, (1, -(e as i64)), "__bcc_rd(", 0));
            edits.push((e, (0, -(b as i64)), ")", 0));
        }
    }
    for &(b, base_end, member, e) in &bitfields {
        if b < base_end && base_end <= member && member < e && e <= src.len() {
            edits.push((b, (1, -(e as i64)), "__bcc_rdbf(", 0));
            edits.push((base_end, (2, 0), ", ", member - base_end));
            edits.push((e, (0, -(b as i64)), ")", 0));
        }
    }
    for &(b, e, name) in &renames {
        if b < e && e <= src.len() {
            edits.push((b, (3, 0), name, e - b));
        }
    }
    edits.sort_by_key(|&(p, r, _, _)| (p, r));
    let mut out = String::with_capacity(src.len() + edits.len() * 10);
    let mut at = 0;
    for (p, _, text, skip) in edits {
        if p < at || !src.is_char_boundary(p) {
            continue;
        }
        out.push_str(&src[at..p]);
        out.push_str(text);
        at = p + skip;
    }
    out.push_str(&src[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_file_skips_included_from() {
        let t = "{\n \"loc\": { \"offset\": 1, \"file\": \"/h/a.h\",\n \"includedFrom\": {\n \"file\": \"<stdin>\"\n } } }";
        assert_eq!(last_file(t).as_deref(), Some("/h/a.h"));
        assert_eq!(last_file("{\"offset\": 3}"), None);
        assert_eq!(last_file("{\"file\": \"a\\\"b\"}").as_deref(), Some("a\"b"));
    }

    #[test]
    fn pointee_records() {
        assert_eq!(pointee_record("struct task_struct *"), Some("task_struct"));
        assert_eq!(pointee_record("const struct sock *"), Some("sock"));
        assert_eq!(pointee_record("union bpf_attr *const"), None);
        assert_eq!(pointee_record("struct sock **"), None);
        assert_eq!(pointee_record("int *"), None);
        assert_eq!(pointee_record("struct sock"), None);
    }

    #[test]
    fn nested_loads_open_outer_first_and_close_inner_first() {
        let src = "x = t->p->tgid;";
        // t->p is [4, 8), t->p->tgid is [4, 14).
        assert_eq!(apply(src, vec![(4, 14), (4, 8)], vec![], vec![]), "x = __bcc_rd(__bcc_rd(t->p)->tgid);");
        assert_eq!(apply("v = sk->bf;", vec![], vec![(4, 6, 8, 10)], vec![]), "v = __bcc_rdbf(sk, bf);");
    }
}
