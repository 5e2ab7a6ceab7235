//! A small reader for raw BTF, in plain Rust.
//!
//! Two users: the compiler, which scans the kernel's 5 MB BTF once per compile to find the ids of
//! the types a source names (libbpf's `btf__find_by_name_kind` is a linear scan per name), and
//! the map layer, which turns a map's key and value types into [`TypeDesc`] trees from which the
//! Python side builds ctypes classes. Types are kept as fixed-size records pointing into the raw
//! bytes; members are decoded only when asked for.

use std::collections::{HashMap, HashSet};

use crate::core::error::{Error, Result};

const MAGIC: u16 = 0xeb9f;

/// BTF kinds (`BTF_KIND_*`).
#[allow(missing_docs)]
pub mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

#[derive(Debug, Clone, Copy)]
struct Rec {
    name_off: u32,
    kind: u8,
    kflag: bool,
    vlen: u16,
    size_or_type: u32,
    /// Offset in `data` of the bytes that follow the common 12-byte header.
    extra: u32,
}

/// Parsed BTF: type records over the raw bytes.
pub struct Btf {
    data: Vec<u8>,
    strs_start: usize,
    strs_len: usize,
    recs: Vec<Rec>,
}

/// A member of a struct or union.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Field name; empty for an anonymous member.
    pub name: String,
    /// Offset from the start of the aggregate, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield in bits, 0 for an ordinary field.
    pub bitfield_size: u32,
    /// The field's type.
    pub ty: TypeDesc,
}

/// A BTF type with typedefs and qualifiers resolved, as the Python layer needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDesc {
    /// `void` (only behind pointers and as a missing type).
    Void,
    /// An integer, char or bool.
    Int { name: String, size: u32, signed: bool, is_char: bool, is_bool: bool },
    /// A floating-point type.
    Float { name: String, size: u32 },
    /// A pointer, presented as an unsigned integer of the target's pointer size.
    Ptr { size: u32 },
    /// A fixed-length array.
    Array { elem: Box<TypeDesc>, len: u32 },
    /// A struct or union with its exact size and member offsets.
    Struct { name: String, size: u32, union: bool, members: Vec<Member> },
    /// An enum, carried as an integer of its size.
    Enum { name: String, size: u32, signed: bool },
    /// A type that cannot be stored (function, forward declaration), with its size in bytes if any.
    Opaque { name: String, size: u32 },
}

impl TypeDesc {
    /// Size in bytes.
    pub fn size(&self) -> u32 {
        match self {
            TypeDesc::Void => 0,
            TypeDesc::Int { size, .. }
            | TypeDesc::Float { size, .. }
            | TypeDesc::Ptr { size }
            | TypeDesc::Struct { size, .. }
            | TypeDesc::Enum { size, .. }
            | TypeDesc::Opaque { size, .. } => *size,
            TypeDesc::Array { elem, len } => elem.size().saturating_mul(*len),
        }
    }
}

/// A variable in a data section (`.rodata`, `.data`, `.bss`).
#[derive(Debug, Clone)]
pub struct SecVar {
    /// The C name of the global.
    pub name: String,
    /// Its BTF type id (the VAR's target type).
    pub type_id: u32,
    /// Offset in the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Value(format!("malformed BTF: {}", msg.into()))
}

impl Btf {
    /// Parses raw BTF (as in `/sys/kernel/btf/vmlinux` or an object's `.BTF` section).
    pub fn parse(data: Vec<u8>) -> Result<Btf> {
        if data.len() < 24 {
            return Err(bad("shorter than its header"));
        }
        let rd = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        if u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(bad("bad magic (big-endian BTF is not supported)"));
        }
        let hdr_len = rd(4) as usize;
        let (type_off, type_len, str_off, str_len) = (rd(8) as usize, rd(12) as usize, rd(16) as usize, rd(20) as usize);
        let types_start = hdr_len.checked_add(type_off).ok_or_else(|| bad("type offset"))?;
        let types_end = types_start.checked_add(type_len).ok_or_else(|| bad("type length"))?;
        let strs_start = hdr_len.checked_add(str_off).ok_or_else(|| bad("string offset"))?;
        if types_end > data.len() || strs_start.checked_add(str_len).is_none_or(|e| e > data.len()) {
            return Err(bad("sections run past the end"));
        }
        let mut recs = Vec::with_capacity(type_len / 16);
        let mut o = types_start;
        while o + 12 <= types_end {
            let info = rd(o + 4);
            let rec = Rec {
                name_off: rd(o),
                vlen: (info & 0xffff) as u16,
                kind: ((info >> 24) & 0x1f) as u8,
                kflag: info >> 31 == 1,
                size_or_type: rd(o + 8),
                extra: (o + 12) as u32,
            };
            let v = rec.vlen as usize;
            let extra = match rec.kind {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * v,
                kind::ENUM | kind::FUNC_PROTO => 8 * v,
                kind::PTR | kind::FWD | kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::FUNC
                | kind::FLOAT | kind::TYPE_TAG => 0,
                k => return Err(bad(format!("unknown kind {k} at type {}", recs.len() + 1))),
            };
            o += 12 + extra;
            if o > types_end {
                return Err(bad("a type runs past the type section"));
            }
            recs.push(rec);
        }
        Ok(Btf { data, strs_start, strs_len: str_len, recs })
    }

    fn u32_at(&self, o: usize) -> u32 {
        u32::from_le_bytes([self.data[o], self.data[o + 1], self.data[o + 2], self.data[o + 3]])
    }

    /// Number of types, not counting void (id 0). Valid ids are `1..=len()`.
    pub fn len(&self) -> u32 {
        self.recs.len() as u32
    }

    /// Whether the BTF holds no types.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// The raw bytes this was parsed from.
    pub fn raw(&self) -> &[u8] {
        &self.data
    }

    fn rec(&self, id: u32) -> Option<&Rec> {
        id.checked_sub(1).and_then(|i| self.recs.get(i as usize))
    }

    fn str_bytes(&self, off: u32) -> &[u8] {
        let off = off as usize;
        if off >= self.strs_len {
            return b"";
        }
        let s = &self.data[self.strs_start + off..self.strs_start + self.strs_len];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        &s[..end]
    }

    fn str_at(&self, off: u32) -> &str {
        std::str::from_utf8(self.str_bytes(off)).unwrap_or("")
    }

    /// The kind of type `id` (0 for void or an unknown id).
    pub fn kind(&self, id: u32) -> u8 {
        self.rec(id).map_or(0, |r| r.kind)
    }

    /// The name of type `id` (empty when anonymous).
    pub fn name(&self, id: u32) -> &str {
        self.rec(id).map_or("", |r| self.str_at(r.name_off))
    }

    /// For each name in `names`, the ids of types so named, grouped by how C refers to them:
    /// `tagged` holds struct/union/enum tags (`struct task_struct`), `plain` holds typedefs and
    /// the enums that define an enumerator of that name. One pass over every type.
    pub fn find_names(&self, names: &HashSet<&str>) -> (HashMap<String, Vec<u32>>, HashMap<String, Vec<u32>>) {
        let mut tagged: HashMap<String, Vec<u32>> = HashMap::new();
        let mut plain: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, r) in self.recs.iter().enumerate() {
            let id = i as u32 + 1;
            match r.kind {
                kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::TYPEDEF => {
                    if r.name_off != 0 {
                        let n = self.str_at(r.name_off);
                        if names.contains(n) {
                            let into = if r.kind == kind::TYPEDEF { &mut plain } else { &mut tagged };
                            into.entry(n.to_string()).or_default().push(id);
                        }
                    }
                    if r.kind == kind::ENUM || r.kind == kind::ENUM64 {
                        let stride = if r.kind == kind::ENUM { 8 } else { 12 };
                        for j in 0..r.vlen as usize {
                            let n = self.str_at(self.u32_at(r.extra as usize + j * stride));
                            if names.contains(n) {
                                plain.entry(n.to_string()).or_default().push(id);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        (tagged, plain)
    }

    /// Follows typedefs, qualifiers and type tags to the underlying type id.
    pub fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..64 {
            match self.rec(id) {
                Some(r)
                    if matches!(
                        r.kind,
                        kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG
                    ) =>
                {
                    id = r.size_or_type
                }
                _ => return id,
            }
        }
        id
    }

    /// The id of the named DATASEC (`.rodata`, `.data`, `.bss`, or `.data.foo`), if present.
    pub fn find_datasec(&self, name: &str) -> Option<u32> {
        self.recs
            .iter()
            .enumerate()
            .find(|(_, r)| r.kind == kind::DATASEC && self.str_at(r.name_off) == name)
            .map(|(i, _)| i as u32 + 1)
    }

    /// The variables of a DATASEC.
    pub fn datasec_vars(&self, id: u32) -> Vec<SecVar> {
        let Some(r) = self.rec(id).filter(|r| r.kind == kind::DATASEC) else { return Vec::new() };
        (0..r.vlen as usize)
            .filter_map(|j| {
                let o = r.extra as usize + j * 12;
                let var = self.u32_at(o);
                let vr = self.rec(var).filter(|v| v.kind == kind::VAR)?;
                Some(SecVar {
                    name: self.str_at(vr.name_off).to_string(),
                    type_id: vr.size_or_type,
                    offset: self.u32_at(o + 4),
                    size: self.u32_at(o + 8),
                })
            })
            .collect()
    }

    /// Names of the structs and unions (with their ids) whose name is `name`, for finding the
    /// record type of an event stream by name.
    pub fn find_struct(&self, name: &str) -> Option<u32> {
        self.recs
            .iter()
            .enumerate()
            .find(|(_, r)| matches!(r.kind, kind::STRUCT | kind::UNION) && self.str_at(r.name_off) == name)
            .map(|(i, _)| i as u32 + 1)
    }

    /// The size in bytes of type `id` (0 for void, functions and forward declarations).
    pub fn size_of(&self, id: u32) -> u32 {
        self.describe(id).size()
    }

    /// Describes type `id` for storage: typedefs and qualifiers resolved, members decoded.
    pub fn describe(&self, id: u32) -> TypeDesc {
        self.describe_depth(id, 0)
    }

    fn describe_depth(&self, id: u32, depth: u32) -> TypeDesc {
        if depth > 32 {
            return TypeDesc::Opaque { name: "<too deep>".into(), size: 0 };
        }
        let id = self.resolve(id);
        let Some(r) = self.rec(id) else { return TypeDesc::Void };
        let name = self.str_at(r.name_off).to_string();
        match r.kind {
            kind::INT => {
                let enc = self.u32_at(r.extra as usize);
                let e = (enc >> 24) & 0xf;
                TypeDesc::Int { name, size: r.size_or_type, signed: e & 1 != 0, is_char: e & 2 != 0, is_bool: e & 4 != 0 }
            }
            kind::FLOAT => TypeDesc::Float { name, size: r.size_or_type },
            kind::PTR => TypeDesc::Ptr { size: 8 },
            kind::ARRAY => {
                let o = r.extra as usize;
                let elem = self.describe_depth(self.u32_at(o), depth + 1);
                TypeDesc::Array { elem: Box::new(elem), len: self.u32_at(o + 8) }
            }
            kind::STRUCT | kind::UNION => {
                let members = (0..r.vlen as usize)
                    .map(|j| {
                        let o = r.extra as usize + j * 12;
                        let off = self.u32_at(o + 8);
                        let (bit_offset, bitfield_size) = if r.kflag { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
                        Member {
                            name: self.str_at(self.u32_at(o)).to_string(),
                            bit_offset,
                            bitfield_size,
                            ty: self.describe_depth(self.u32_at(o + 4), depth + 1),
                        }
                    })
                    .collect();
                TypeDesc::Struct { name, size: r.size_or_type, union: r.kind == kind::UNION, members }
            }
            kind::ENUM | kind::ENUM64 => TypeDesc::Enum { name, size: r.size_or_type, signed: r.kflag },
            _ => TypeDesc::Opaque { name, size: 0 },
        }
    }
}

/// The part of a CO-RE type name that relocations match on: libbpf drops a "flavour" suffix, which
/// starts at the last `___` that has another character on each side (`task_struct___old` is
/// matched as `task_struct`).
pub fn essential_name(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() >= 5 {
        for i in (0..=b.len() - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return &name[..i + 1];
            }
        }
    }
    name
}

/// How much of a type a CO-RE subset keeps (ordered: a type reached both ways is kept in full).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    Out,
    /// Reached only through a pointer: a struct or union keeps its name, kind and size but no
    /// members (libbpf's compatibility checks stop at a composite behind a pointer).
    Stub,
    Full,
}

impl Btf {
    /// A BTF that holds only what CO-RE relocations against the types named `roots` (essential
    /// names) can look at: every type of such a name, with everything reachable from it without
    /// crossing a pointer in full, and what lies behind pointers as stubs. libbpf finds the same
    /// candidates and computes the same offsets, sizes and existence answers in it as in the whole
    /// BTF, whose parse is most of the time a warm load takes. Type ids are renumbered, so the
    /// result is no good for relocations that return a kernel type id, nor for anything but CO-RE.
    /// Returns the subset and the roots this BTF has no type of (the caller decides whether a
    /// module could have them); `None` if the BTF is malformed.
    pub fn core_subset(&self, roots: &HashSet<(String, u8)>) -> Option<(Vec<u8>, Vec<String>)> {
        let n = self.recs.len();
        let mut keep = vec![Keep::Out; n + 1];
        let mut work: Vec<(u32, Keep)> = Vec::new();
        let names: HashSet<&str> = roots.iter().map(|(name, _)| name.as_str()).collect();
        // A root counts as found only in a kind libbpf would take as a candidate for it (the same
        // kind, or any two enums): a struct vmlinux only forward-declares is a module's to give.
        let mut found: HashSet<(&str, u8)> = HashSet::new();
        let family = |k: u8| if k == kind::ENUM64 { kind::ENUM } else { k };
        for (i, r) in self.recs.iter().enumerate() {
            if r.name_off == 0 || matches!(r.kind, kind::FUNC | kind::VAR | kind::DATASEC | kind::DECL_TAG) {
                continue;
            }
            let name = essential_name(self.str_at(r.name_off));
            if let Some(root) = names.get(name) {
                found.insert((root, family(r.kind)));
                work.push((i as u32 + 1, Keep::Full));
            }
        }
        let mut missing: Vec<String> =
            roots.iter().filter(|(r, k)| !found.contains(&(r.as_str(), family(*k)))).map(|(r, _)| r.clone()).collect();
        missing.sort();
        missing.dedup();
        while let Some((id, how)) = work.pop() {
            if id == 0 {
                continue;
            }
            let slot = keep.get_mut(id as usize)?;
            if *slot >= how {
                continue;
            }
            *slot = how;
            let r = self.recs[id as usize - 1];
            let e = r.extra as usize;
            match r.kind {
                kind::PTR => work.push((r.size_or_type, Keep::Stub)),
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    work.push((r.size_or_type, how))
                }
                kind::ARRAY => work.extend([(self.u32_at(e), how), (self.u32_at(e + 4), how)]),
                kind::STRUCT | kind::UNION if how == Keep::Full => {
                    work.extend((0..r.vlen as usize).map(|j| (self.u32_at(e + 12 * j + 4), Keep::Full)))
                }
                kind::FUNC_PROTO => {
                    work.push((r.size_or_type, Keep::Stub));
                    work.extend((0..r.vlen as usize).map(|j| (self.u32_at(e + 8 * j + 4), Keep::Stub)));
                }
                kind::FUNC | kind::VAR | kind::DATASEC | kind::DECL_TAG => return None,
                _ => {}
            }
        }
        let mut new_id = vec![0u32; n + 1];
        let mut next = 1;
        for (id, k) in keep.iter().enumerate().skip(1) {
            if *k != Keep::Out {
                new_id[id] = next;
                next += 1;
            }
        }
        let mut strs: Vec<u8> = vec![0];
        let mut offsets: HashMap<&[u8], u32> = HashMap::new();
        let mut types: Vec<u32> = Vec::new();
        let mut name = |off: u32| -> u32 {
            let s = self.str_bytes(off);
            if s.is_empty() {
                return 0;
            }
            *offsets.entry(s).or_insert_with(|| {
                let o = strs.len() as u32;
                strs.extend_from_slice(s);
                strs.push(0);
                o
            })
        };
        for (id, k) in keep.iter().enumerate().skip(1) {
            if *k == Keep::Out {
                continue;
            }
            let r = self.recs[id - 1];
            let e = r.extra as usize;
            let stub = *k == Keep::Stub && matches!(r.kind, kind::STRUCT | kind::UNION);
            let info = if stub { u32::from(r.kind) << 24 } else { self.u32_at(e - 8) };
            let size_or_type = match r.kind {
                kind::PTR | kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG
                | kind::FUNC_PROTO => new_id[r.size_or_type as usize],
                _ => r.size_or_type,
            };
            types.extend([name(r.name_off), info, size_or_type]);
            let v = if stub { 0 } else { r.vlen as usize };
            match r.kind {
                kind::INT => types.push(self.u32_at(e)),
                kind::ARRAY => types.extend([
                    new_id[self.u32_at(e) as usize],
                    new_id[self.u32_at(e + 4) as usize],
                    self.u32_at(e + 8),
                ]),
                kind::STRUCT | kind::UNION => {
                    for j in 0..v {
                        let o = e + 12 * j;
                        types.extend([name(self.u32_at(o)), new_id[self.u32_at(o + 4) as usize], self.u32_at(o + 8)]);
                    }
                }
                kind::ENUM => (0..v).for_each(|j| types.extend([name(self.u32_at(e + 8 * j)), self.u32_at(e + 8 * j + 4)])),
                kind::ENUM64 => {
                    for j in 0..v {
                        let o = e + 12 * j;
                        types.extend([name(self.u32_at(o)), self.u32_at(o + 4), self.u32_at(o + 8)]);
                    }
                }
                kind::FUNC_PROTO => {
                    (0..v).for_each(|j| types.extend([name(self.u32_at(e + 8 * j)), new_id[self.u32_at(e + 8 * j + 4) as usize]]))
                }
                _ => {}
            }
        }
        let type_len = (types.len() * 4) as u32;
        let mut out = Vec::with_capacity(24 + types.len() * 4 + strs.len());
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for v in [24u32, 0, type_len, type_len, strs.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(types.iter().flat_map(|v| v.to_le_bytes()));
        out.extend(strs);
        Some((out, missing))
    }

    /// The essential names of the types of split BTF `self` (a kernel module's), whose string
    /// offsets continue those of `base` (the kernel's).
    pub fn split_names<'a>(&'a self, base: &'a Btf) -> impl Iterator<Item = &'a str> + 'a {
        self.recs.iter().filter(|r| r.name_off != 0).map(move |r| {
            let off = r.name_off as usize;
            let name = if off < base.strs_len { base.str_at(r.name_off) } else { self.str_at((off - base.strs_len) as u32) };
            essential_name(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-assembled BTF: int, struct { int a; int b:3; }, typedef, enum, datasec.
    fn sample() -> Vec<u8> {
        let strs = b"\0int\0pair\0a\0b\0pair_t\0color\0RED\0.data\0g\0".to_vec();
        let s = |name: &str| {
            let pat = [name.as_bytes(), b"\0"].concat();
            (1..strs.len()).find(|&i| strs[i - 1] == 0 && strs[i..].starts_with(&pat)).unwrap() as u32
        };
        let mut t: Vec<u32> = Vec::new();
        // 1: int, 4 bytes, signed, 32 bits
        t.extend([s("int"), (kind::INT as u32) << 24, 4, (1 << 24) | 32]);
        // 2: struct pair { int a; int b:3 } with kind_flag
        t.extend([s("pair"), (1 << 31) | ((kind::STRUCT as u32) << 24) | 2, 8]);
        t.extend([s("a"), 1, 0, s("b"), 1, (3 << 24) | 32]);
        // 3: typedef pair_t -> 2
        t.extend([s("pair_t"), (kind::TYPEDEF as u32) << 24, 2]);
        // 4: enum color { RED = 7 }
        t.extend([s("color"), ((kind::ENUM as u32) << 24) | 1, 4, s("RED"), 7]);
        // 5: var g: pair_t
        t.extend([s("g"), (kind::VAR as u32) << 24, 3, 1]);
        // 6: datasec .data { g at 0, 8 bytes }
        t.extend([s(".data"), ((kind::DATASEC as u32) << 24) | 1, 8, 5, 0, 8]);
        let types: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for v in [24u32, 0, types.len() as u32, types.len() as u32, strs.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(types);
        out.extend(strs);
        out
    }

    #[test]
    fn parses_and_describes() {
        let btf = Btf::parse(sample()).unwrap();
        assert_eq!(btf.len(), 6);
        assert_eq!(btf.name(2), "pair");
        assert_eq!(btf.resolve(3), 2);
        match btf.describe(3) {
            TypeDesc::Struct { name, size, members, union } => {
                assert_eq!((name.as_str(), size, union), ("pair", 8, false));
                assert_eq!(members[1].bit_offset, 32);
                assert_eq!(members[1].bitfield_size, 3);
                assert!(matches!(members[0].ty, TypeDesc::Int { size: 4, signed: true, .. }));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn finds_names_enumerators_and_datasecs() {
        let btf = Btf::parse(sample()).unwrap();
        let names: HashSet<&str> = ["pair", "pair_t", "RED", "nothing"].into_iter().collect();
        let (tagged, plain) = btf.find_names(&names);
        assert_eq!(tagged["pair"], vec![2]);
        assert_eq!(plain["pair_t"], vec![3]);
        assert_eq!(plain["RED"], vec![4]);
        assert!(!tagged.contains_key("nothing") && !plain.contains_key("nothing"));
        let ds = btf.find_datasec(".data").unwrap();
        let vars = btf.datasec_vars(ds);
        assert_eq!((vars[0].name.as_str(), vars[0].offset, vars[0].size, vars[0].type_id), ("g", 0, 8, 3));
    }

    #[test]
    fn essential_names_drop_a_flavour() {
        assert_eq!(essential_name("task_struct___old"), "task_struct");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("__x"), "__x");
        assert_eq!(essential_name("x____"), "x____");
        assert_eq!(essential_name("ab"), "ab");
    }

    #[test]
    fn a_core_subset_keeps_what_its_roots_reach() {
        let btf = Btf::parse(sample()).unwrap();
        let roots: HashSet<(String, u8)> =
            [("pair".to_string(), kind::STRUCT), ("absent".to_string(), kind::STRUCT), ("color".to_string(), kind::STRUCT)]
                .into_iter()
                .collect();
        let (raw, missing) = btf.core_subset(&roots).unwrap();
        // `color` is here only as an enum: a struct of that name would be another's (a module's).
        assert_eq!(missing, vec!["absent".to_string(), "color".to_string()]);
        let sub = Btf::parse(raw).unwrap();
        // struct pair, the int its members are and the enum of a root's name; not the typedef,
        // var or datasec.
        assert_eq!(sub.len(), 3);
        assert_eq!((sub.name(1), sub.name(2), sub.name(3)), ("int", "pair", "color"));
        assert_eq!(sub.describe(2), btf.describe(2));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(vec![0; 10]).is_err());
        let mut b = sample();
        b[0] = 0;
        assert!(Btf::parse(b).is_err());
        let mut b = sample();
        b[12] = 0xff; // type_len far past the end
        assert!(Btf::parse(b).is_err());
    }

    #[test]
    fn parses_the_running_kernel() {
        if let Ok(raw) = std::fs::read("/sys/kernel/btf/vmlinux") {
            let btf = Btf::parse(raw).unwrap();
            let names: HashSet<&str> = ["task_struct", "u32", "BPF_MAP_TYPE_HASH"].into_iter().collect();
            let (tagged, plain) = btf.find_names(&names);
            assert!(tagged.contains_key("task_struct"));
            assert!(plain.contains_key("u32") && plain.contains_key("BPF_MAP_TYPE_HASH"));
        }
    }
}
