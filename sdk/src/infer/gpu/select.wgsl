// Scores one chunk of 1024 items per workgroup (score_i = u · x_i + b_i, masked items left out)
// and sorts the chunk in workgroup memory (bitonic), keeping its best `k_out` candidates and
// the first one it dropped. The CPU merges the chunks and recomputes every score it returns.

struct Params {
    rows: u32,        // rows in this page of the item matrix
    first_row: u32,   // global index of the page's first row
    lanes: u32,       // 16-byte lanes per row
    k_out: u32,       // candidates kept per chunk (≤ CHUNK)
    first_chunk: u32, // global index of the page's first chunk (output offset)
    flags: u32,       // 1: add bias, 2: apply mask
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> user: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> items: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec2<u32>>;

const CHUNK: u32 = 1024u;
const THREADS: u32 = 256u;
// An empty slot (masked item, past the end). Scores are never compared with ±∞ or NaN: WGSL
// lets implementations assume they do not occur.
const NONE: u32 = 0xffffffffu;

var<workgroup> key: array<f32, 1024>;
var<workgroup> idx: array<u32, 1024>;

//ITEM_DOT

// Best first: higher score, then lower index; empty slots last.
fn before(a: f32, ai: u32, b: f32, bi: u32) -> bool {
    if (ai == NONE) {
        return false;
    }
    if (bi == NONE) {
        return true;
    }
    return a > b || (a == b && ai < bi);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let chunk = wg.x;
    for (var r = 0u; r < CHUNK / THREADS; r++) {
        let slot = lid + r * THREADS;
        let local = chunk * CHUNK + slot;
        var s = 0.0;
        var id = NONE;
        if (local < params.rows) {
            let g = params.first_row + local;
            var masked = false;
            if ((params.flags & 2u) != 0u) {
                masked = (mask[g >> 5u] & (1u << (g & 31u))) != 0u;
            }
            if (!masked) {
                s = item_dot(local);
                if ((params.flags & 1u) != 0u) {
                    s = s + bias[g];
                }
                id = g;
            }
        }
        key[slot] = s;
        idx[slot] = id;
    }
    workgroupBarrier();

    for (var size = 2u; size <= CHUNK; size = size << 1u) {
        for (var stride = size >> 1u; stride > 0u; stride = stride >> 1u) {
            for (var r = 0u; r < CHUNK / (2u * THREADS); r++) {
                let p = lid + r * THREADS;
                let i = 2u * stride * (p / stride) + (p % stride);
                let j = i + stride;
                let up = (i & size) == 0u;
                let ki = key[i];
                let kj = key[j];
                let ii = idx[i];
                let ij = idx[j];
                let swap = select(before(ki, ii, kj, ij), before(kj, ij, ki, ii), up);
                if (swap) {
                    key[i] = kj;
                    key[j] = ki;
                    idx[i] = ij;
                    idx[j] = ii;
                }
            }
            workgroupBarrier();
        }
    }

    let base = (params.first_chunk + chunk) * (params.k_out + 1u);
    for (var p = lid; p < params.k_out; p += THREADS) {
        out[base + p] = vec2<u32>(bitcast<u32>(key[p]), idx[p]);
    }
    if (lid == 0u) {
        var dropped = vec2<u32>(0u, NONE);
        if (params.k_out < CHUNK) {
            dropped = vec2<u32>(bitcast<u32>(key[params.k_out]), idx[params.k_out]);
        }
        out[base + params.k_out] = dropped;
    }
}
