//! The `hnsw_rs` 0.3 dump (format 4, full mode) an HNSW file embeds: read straight into a
//! [`Graph`] and written back from one, so that a loaded index holds its vectors once.
//!
//! Every number is little-endian and every `usize` of `hnsw_rs`'s layout is 8 bytes, whatever
//! the host (`hnsw_rs` itself writes native-endian: the same bytes on the little-endian hosts
//! it runs on). The parts:
//!
//! ```text
//! description  magic u32 (0x002a6779 for format 4, 0x002a6771 for 3), dump mode u8 (1: full),
//!              M u8, level scale f64 (format 4 only), layers u8, ef_construction u64,
//!              points u64, dimension u64, distance name (u64 length + UTF-8), type name
//!              (u64 length + UTF-8, "f32")
//! graph        layer count u8; per layer: magic u32 0x000a676f, point count u64; per point:
//!              magic u32 0x000a678f, row u64, layer u8, rank i32, then for each of the
//!              description's layers a neighbour count u64 and per neighbour: row u64,
//!              layer u8, rank i32, distance f32; then the entry point (row u64, layer u8,
//!              rank i32)
//! data         magic u32 0xa67f0000, dimension u64; per point in graph order: magic u32
//!              0xa67f0000, row u64, byte length u64 (4 x dimension), the vector (f32)
//! ```
//!
//! The distance name is [`DISTANCE_NAME`], a constant; files written before it carry
//! [`LEGACY_DISTANCE_NAME`] (what `std::any::type_name` gave for the distance type then) and
//! load the same. Which distance the graph uses is recorded in this crate's header, not here.
//! (`hnsw_rs` reloads a dump only for a distance type whose `type_name` is the stored name:
//! the comparisons in `hnsw_rs_compare` rename it in the copy they hand over.)

use super::distance::GraphDistance;
use super::graph::{BLOCK, Graph, Node};

/// The distance name written in every dump's description. Stored in files: never change it.
pub(crate) const DISTANCE_NAME: &str = "vecindex::HnswDistance";
/// The distance name files written before [`DISTANCE_NAME`] carry, accepted as its alias.
pub(crate) const LEGACY_DISTANCE_NAME: &str = "vecindex::hnsw::HnswDistance";
/// The vector type name in every dump's description.
pub(crate) const TYPE_NAME: &str = "f32";

const MAGIC_DESCR_3: u32 = 0x002a_6771;
const MAGIC_DESCR_4: u32 = 0x002a_6779;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_DATA: u32 = 0xa67f_0000;
/// Layers `hnsw_rs` keeps, and the most a dump may declare.
const MAX_LAYERS: u8 = 16;
/// Longest name `hnsw_rs` accepts in a description.
const MAX_NAME: usize = 256;

/// A dump's description (its first part).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Description {
    /// 3 or 4 (format 3 has no level scale).
    pub(crate) format: u8,
    /// 1 for a full dump (neighbours named by layer and rank); 0, a light one, is refused.
    pub(crate) dump_mode: u8,
    pub(crate) m: u8,
    pub(crate) level_scale: f64,
    /// Neighbour lists per point (16 in `hnsw_rs`).
    pub(crate) layers: u8,
    pub(crate) ef_construction: u64,
    pub(crate) points: u64,
    pub(crate) dim: u64,
}

impl Description {
    /// The description `hnsw_rs` writes for an index of these parameters: format 4, a full
    /// dump, its level scale `1 / ln M`, 16 layers.
    pub(crate) fn native(m: u8, ef_construction: usize, points: usize, dim: usize) -> Self {
        Self {
            format: 4,
            dump_mode: 1,
            m,
            level_scale: 1.0 / f64::from(m).ln(),
            layers: MAX_LAYERS,
            ef_construction: ef_construction as u64,
            points: points as u64,
            dim: dim as u64,
        }
    }

    /// Reads a description from the start of `graph`; returns it and its length in bytes.
    /// Checks what `hnsw_rs` checks (magic, name lengths) and that both names are ours.
    pub(crate) fn parse(graph: &[u8]) -> Result<(Self, usize), String> {
        let mut r = Reader { b: graph, at: 0 };
        let format = match r.u32()? {
            MAGIC_DESCR_4 => 4,
            MAGIC_DESCR_3 => 3,
            other => return Err(format!("hnsw_rs description: unknown magic {other:#x}")),
        };
        let (dump_mode, m) = (r.u8()?, r.u8()?);
        let level_scale = if format == 4 { r.f64()? } else { 0.0 };
        let layers = r.u8()?;
        let (ef_construction, points, dim) = (r.u64()?, r.u64()?, r.u64()?);
        let distance = r.name()?;
        let type_name = r.name()?;
        if distance != DISTANCE_NAME && distance != LEGACY_DISTANCE_NAME {
            return Err(format!("hnsw_rs description: distance {distance:?}"));
        }
        if type_name != TYPE_NAME {
            return Err(format!("hnsw_rs description: vector type {type_name:?}"));
        }
        let descr = Self {
            format,
            dump_mode,
            m,
            level_scale,
            layers,
            ef_construction,
            points,
            dim,
        };
        Ok((descr, r.at))
    }

    /// The description's bytes, with [`DISTANCE_NAME`] and [`TYPE_NAME`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_naming(DISTANCE_NAME)
    }

    /// The description's bytes, naming the distance `distance_name`.
    pub(crate) fn encode_naming(&self, distance_name: &str) -> Vec<u8> {
        let mut d = Vec::with_capacity(96);
        let magic = if self.format == 3 {
            MAGIC_DESCR_3
        } else {
            MAGIC_DESCR_4
        };
        d.extend_from_slice(&magic.to_le_bytes());
        d.push(self.dump_mode);
        d.push(self.m);
        if self.format != 3 {
            d.extend_from_slice(&self.level_scale.to_le_bytes());
        }
        d.push(self.layers);
        for v in [self.ef_construction, self.points, self.dim] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        for name in [distance_name, TYPE_NAME] {
            d.extend_from_slice(&(name.len() as u64).to_le_bytes());
            d.extend_from_slice(name.as_bytes());
        }
        d
    }
}

/// What writing a graph as a dump needs beyond the graph itself.
#[derive(Debug, Clone)]
pub(crate) struct DumpLayout {
    pub(crate) description: Description,
    /// Layers in the graph part (16 in `hnsw_rs`, most of them empty).
    pub(crate) layers: u8,
    /// Rows in dump order: layer by layer, by rank within the layer.
    pub(crate) order: Vec<u32>,
}

impl DumpLayout {
    /// The layout for a graph this crate built: [`Description::native`], points layer by
    /// layer in row order, the entry point first on the top layer (where a reload takes it
    /// from).
    pub(crate) fn native(graph: &Graph, m: u8, ef_construction: usize) -> Self {
        let mut order: Vec<u32> = (0..graph.n as u32).collect();
        order.sort_by_key(|&r| (graph.level[r as usize], r != graph.entry, r));
        Self {
            description: Description::native(m, ef_construction, graph.n, graph.dim),
            layers: MAX_LAYERS,
            order,
        }
    }
}

/// Checks the framing of a data dump: a header (magic u32, dimension u64), then per point
/// magic u32, row u64, byte length u64 and the vector. `hnsw_rs` trusts each length (it
/// allocates it and reads `dim` floats from it unchecked), so every record must be exactly one
/// vector of `dim` f32 and the dump must hold exactly `count` of them.
pub(crate) fn check_data_dump(data: &[u8], dim: usize, count: usize) -> Result<(), String> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
    };
    if u32_at(0) != Some(MAGIC_DATA) || u64_at(4) != Some(dim as u64) {
        return Err("embedded hnsw_rs data dump has a bad header".into());
    }
    let record = 4 + 8 + 8 + dim * 4;
    let body = data.len() - 12;
    if count.checked_mul(record) != Some(body) {
        return Err(format!(
            "embedded hnsw_rs data dump holds {body} bytes, {count} points of dimension {dim} need {}",
            count.saturating_mul(record)
        ));
    }
    for i in 0..count {
        let at = 12 + i * record;
        if u32_at(at) != Some(MAGIC_DATA) || u64_at(at + 12) != Some(dim as u64 * 4) {
            return Err(format!(
                "embedded hnsw_rs data dump: record {i} is malformed"
            ));
        }
    }
    Ok(())
}

/// Checks the framing of a graph part after its description: the layer count (at most 16),
/// the counts of points and neighbours against the bytes there are, and exactly `count`
/// points, before anything is allocated for them.
pub(crate) fn check_graph_dump(
    g: &[u8],
    descr_layers: u8,
    dump_mode: u8,
    count: usize,
) -> Result<(), String> {
    let bad = |what: &str| format!("embedded hnsw_rs graph dump: {what}");
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= g.len())
            .ok_or_else(|| bad("truncated"))?;
        let out = &g[at..end];
        at = end;
        Ok(out)
    };
    fn num(b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(a)
    }
    if descr_layers > MAX_LAYERS {
        return Err(bad("too many layers in the description"));
    }
    let layers = take(1)?[0];
    if layers > MAX_LAYERS {
        return Err(bad("too many layers"));
    }
    let neighbour = 8 + if dump_mode == 1 { 5 } else { 0 } + 4;
    let mut points = 0usize;
    for _ in 0..layers {
        if num(take(4)?) != u64::from(MAGIC_LAYER) {
            return Err(bad("bad layer magic"));
        }
        let n = num(take(8)?);
        points = usize::try_from(n)
            .ok()
            .and_then(|n| points.checked_add(n))
            .filter(|&p| p <= count)
            .ok_or_else(|| bad("more points than the index holds"))?;
        for _ in 0..n {
            if num(take(4)?) != u64::from(MAGIC_POINT) {
                return Err(bad("bad point magic"));
            }
            take(8 + 1 + 4)?;
            for _ in 0..descr_layers {
                let k = usize::try_from(num(take(8)?)).map_err(|_| bad("neighbour count"))?;
                take(
                    k.checked_mul(neighbour)
                        .ok_or_else(|| bad("neighbour count"))?,
                )?;
            }
        }
    }
    if points != count {
        return Err(bad("fewer points than the index holds"));
    }
    take(8 + 1 + 4).map(|_| ())
}

/// A neighbour as the dump names it: (distance, layer, rank in layer).
type DumpNeighbour = (f32, u8, i32);

/// A point of a graph dump, before its neighbours are resolved to rows.
struct DumpPoint {
    origin: usize,
    hood: Vec<Vec<DumpNeighbour>>,
}

/// A bounds-checked reader of little-endian numbers.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("embedded hnsw_rs graph dump: truncated")?;
        let out = &self.b[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.array().map(i32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }
    fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?)
            .map_err(|_| "embedded hnsw_rs graph dump: count too large".into())
    }
    fn f32(&mut self) -> Result<f32, String> {
        self.array().map(f32::from_le_bytes)
    }
    fn f64(&mut self) -> Result<f64, String> {
        self.array().map(f64::from_le_bytes)
    }
    /// A name: u64 length (at most [`MAX_NAME`]) and UTF-8 bytes.
    fn name(&mut self) -> Result<&'a str, String> {
        let len = self.usize()?;
        if len > MAX_NAME {
            return Err(format!("hnsw_rs description: a name of {len} bytes"));
        }
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| "hnsw_rs description: a name that is not UTF-8".into())
    }
}

impl Graph {
    /// Reads a dump straight into a graph, as `hnsw_rs` would reload it: points on layers
    /// `0..=` the entry point's layer, each point's level the layer it is stored in, neighbour
    /// lists sorted by their stored distance and resolved through their (layer, rank), the
    /// entry point the first point of the top layer. `graph` is the whole graph part (its first
    /// `description_len` bytes the description, whose layer count is `descr_layers`); `data`
    /// the data part; `distance` the one the graph was built with.
    pub(crate) fn from_dump(
        distance: super::distance::Distance,
        dim: usize,
        n: usize,
        graph: &[u8],
        (description, description_len): (&Description, usize),
        data: &[u8],
    ) -> Result<(Self, DumpLayout), String> {
        let descr_layers = description.layers;
        let bad = |what: String| format!("embedded hnsw_rs graph dump: {what}");
        if u32::try_from(n).is_err() {
            return Err(format!("{n} points: more than u32 rows"));
        }
        let mut r = Reader {
            b: graph,
            at: description_len,
        };
        let layers = r.u8()?;
        let mut by_layer: Vec<Vec<DumpPoint>> = Vec::with_capacity(layers as usize);
        for l in 0..layers {
            if r.u32()? != MAGIC_LAYER {
                return Err(bad(format!("bad magic at layer {l}")));
            }
            let count = r.usize()?;
            if count > n {
                return Err(bad(format!(
                    "layer {l} holds {count} points, the index {n}"
                )));
            }
            let mut points = Vec::with_capacity(count);
            for rank in 0..count {
                if r.u32()? != MAGIC_POINT {
                    return Err(bad(format!("bad point magic at layer {l}, rank {rank}")));
                }
                let origin = r.usize()?;
                let (p_layer, p_rank) = (r.u8()?, r.i32()?);
                // `hnsw_rs` asserts this on reload.
                if (p_layer, i64::from(p_rank)) != (l, rank as i64) {
                    return Err(bad(format!(
                        "point stored at layer {l}, rank {rank} calls itself ({p_layer}, {p_rank})"
                    )));
                }
                let mut hood = Vec::with_capacity(descr_layers as usize);
                for _ in 0..descr_layers {
                    let k = r.usize()?;
                    // Each neighbour takes 17 bytes: a count beyond the bytes left is a lie.
                    if k > (graph.len() - r.at) / 17 {
                        return Err(bad("truncated neighbour list".into()));
                    }
                    let mut list = Vec::with_capacity(k);
                    for _ in 0..k {
                        let _row = r.usize()?;
                        let (nl, nr) = (r.u8()?, r.i32()?);
                        list.push((r.f32()?, nl, nr));
                    }
                    hood.push(list);
                }
                points.push(DumpPoint { origin, hood });
            }
            by_layer.push(points);
        }
        let (_entry_origin, entry_layer, entry_rank) = (r.usize()?, r.u8()?, r.i32()?);
        if r.at != graph.len() {
            return Err(bad("trailing bytes".into()));
        }
        let resolve = |layer: u8, rank: i32| -> Option<usize> {
            let rank = usize::try_from(rank).ok()?;
            Some(by_layer.get(layer as usize)?.get(rank)?.origin)
        };
        if resolve(entry_layer, entry_rank).is_none() {
            return Err(bad(format!(
                "entry point ({entry_layer}, {entry_rank}) does not exist"
            )));
        }
        let max_level = entry_layer;
        let total: usize = by_layer.iter().map(Vec::len).sum();
        let kept: usize = by_layer[..=max_level as usize].iter().map(Vec::len).sum();
        if total != n || kept != n {
            return Err(format!("hnsw_rs graph holds {kept} points, the index {n}"));
        }

        // The data part: one record per point, in the graph part's order.
        let record = 4 + 8 + 8 + 4 * dim;
        if data.len() != 12 + n * record {
            return Err("embedded hnsw_rs data dump does not match the graph".into());
        }
        let mut order = Vec::with_capacity(n);
        let mut nodes = Vec::with_capacity(n);
        for (l, points) in by_layer.iter().enumerate() {
            for p in points {
                let at = 12 + order.len() * record + 4;
                let origin = u64::from_le_bytes(data[at..at + 8].try_into().unwrap_or_default());
                if origin != p.origin as u64 || p.origin >= n {
                    return Err(format!(
                        "embedded hnsw_rs dump: point {} has data of point {origin}",
                        p.origin
                    ));
                }
                order.push(p.origin as u32);
                let mut links = Vec::with_capacity(l + 1);
                for list in p.hood.iter().take(l + 1) {
                    let mut list = list.clone();
                    if list.iter().any(|nb| nb.0.is_nan()) {
                        return Err(bad(format!("NaN distance at point {}", p.origin)));
                    }
                    // (`+ 0.0`: the two zeros tie, as in the graph's keys.)
                    list.sort_by(|a, b| (a.0 + 0.0).total_cmp(&(b.0 + 0.0)));
                    let mut rows = Vec::with_capacity(list.len());
                    for &(_, nl, nr) in &list {
                        let row = resolve(nl, nr).ok_or_else(|| {
                            bad(format!(
                                "neighbour ({nl}, {nr}) of point {} does not exist",
                                p.origin
                            ))
                        })?;
                        if row != p.origin {
                            rows.push(row as u32);
                        }
                    }
                    links.push(rows);
                }
                nodes.push(Node {
                    row: p.origin,
                    level: l as u8,
                    links,
                });
            }
        }
        let entry = by_layer[max_level as usize][0].origin;
        let graph_out = Self::assemble(distance, dim, n, entry, max_level, &nodes, |i, blocks| {
            let at = 12 + i * record + 20;
            let floats = data[at..at + 4 * dim]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            for (j, v) in floats.enumerate() {
                blocks[j / BLOCK].0[j % BLOCK] = v;
            }
        })?;
        let layout = DumpLayout {
            description: description.clone(),
            layers,
            order,
        };
        Ok((graph_out, layout))
    }

    /// Writes the graph as a dump (graph part, data part) in `layout`'s point order, which
    /// [`Graph::from_dump`] reads back into this graph (and `hnsw_rs` reloads). Neighbour
    /// distances are recomputed with the graph's distance.
    pub(crate) fn write_dump(&self, layout: &DumpLayout) -> Result<(Vec<u8>, Vec<u8>), String> {
        if layout.order.len() != self.n || self.n == 0 {
            return Err("the dump layout does not fit the graph".into());
        }
        let distance = GraphDistance::of(self.distance);
        // Each row's rank within its layer, in dump order.
        let mut rank = vec![0i32; self.n];
        let mut next = vec![0i32; layout.layers.max(self.max_level + 1) as usize];
        for &row in &layout.order {
            let l = self.level[row as usize] as usize;
            rank[row as usize] = next[l];
            next[l] += 1;
        }
        let mut g = layout.description.encode();
        g.push(layout.layers);
        let mut pos = 0usize;
        for l in 0..layout.layers {
            let count = next.get(l as usize).copied().unwrap_or(0) as usize;
            g.extend_from_slice(&MAGIC_LAYER.to_le_bytes());
            g.extend_from_slice(&(count as u64).to_le_bytes());
            for &row in &layout.order[pos..pos + count] {
                if self.level[row as usize] != l {
                    return Err("the dump layout's order is not by layer".into());
                }
                g.extend_from_slice(&MAGIC_POINT.to_le_bytes());
                g.extend_from_slice(&u64::from(row).to_le_bytes());
                g.push(l);
                g.extend_from_slice(&rank[row as usize].to_le_bytes());
                for layer in 0..layout.description.layers {
                    let list = match layer {
                        0 => self.layer0(row),
                        _ => self.upper_links(row, layer),
                    };
                    g.extend_from_slice(&(list.len() as u64).to_le_bytes());
                    for &nb in list {
                        g.extend_from_slice(&u64::from(nb).to_le_bytes());
                        g.push(self.level[nb as usize]);
                        g.extend_from_slice(&rank[nb as usize].to_le_bytes());
                        let d = distance.eval(self.vector(row), self.vector(nb)) + 0.0;
                        g.extend_from_slice(&d.to_le_bytes());
                    }
                }
            }
            pos += count;
        }
        g.extend_from_slice(&u64::from(self.entry).to_le_bytes());
        g.push(self.max_level);
        g.extend_from_slice(&rank[self.entry as usize].to_le_bytes());

        let record = 4 + 8 + 8 + 4 * self.dim;
        let mut d = Vec::with_capacity(12 + self.n * record);
        d.extend_from_slice(&MAGIC_DATA.to_le_bytes());
        d.extend_from_slice(&(self.dim as u64).to_le_bytes());
        for &row in &layout.order {
            d.extend_from_slice(&MAGIC_DATA.to_le_bytes());
            d.extend_from_slice(&u64::from(row).to_le_bytes());
            d.extend_from_slice(&(4 * self.dim as u64).to_le_bytes());
            for v in self.vector(row) {
                d.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok((g, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names stored in files: they never change.
    #[test]
    fn stored_names_are_fixed() {
        assert_eq!(DISTANCE_NAME, "vecindex::HnswDistance");
        assert_eq!(LEGACY_DISTANCE_NAME, "vecindex::hnsw::HnswDistance");
        assert_eq!(TYPE_NAME, "f32");
    }

    /// A description reads back as written, in both formats; a description naming another
    /// distance or type, or a name that is too long or not UTF-8, is refused.
    #[test]
    fn descriptions_round_trip_and_foreign_names_are_refused() {
        for format in [3, 4] {
            let d = Description {
                format,
                level_scale: if format == 4 { 0.5 } else { 0.0 },
                ..Description::native(12, 40, 1000, 7)
            };
            let bytes = d.encode();
            assert_eq!(
                Description::parse(&bytes).unwrap(),
                (d.clone(), bytes.len())
            );
            let legacy = d.encode_naming(LEGACY_DISTANCE_NAME);
            assert_eq!(Description::parse(&legacy).unwrap().0, d);
            for bad in [
                "vecindex::hnsw::graph::HnswDistance",
                "anndists::dist::DistDot",
            ] {
                assert!(Description::parse(&d.encode_naming(bad)).is_err(), "{bad}");
            }
            assert!(Description::parse(&d.encode_naming(&"x".repeat(300))).is_err());
            let mut not_utf8 = d.encode_naming("vecindex::HnswDistancX");
            let at = not_utf8.len() - 3 - 8 - 1;
            not_utf8[at] = 0xff;
            assert!(Description::parse(&not_utf8).is_err());
            for cut in 0..bytes.len() {
                assert!(Description::parse(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }
}
