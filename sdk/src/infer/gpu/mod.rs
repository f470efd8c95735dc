//! Item scoring on the GPU with wgpu (WebGPU in the browser; Vulkan natively, which is how the
//! tests run it on Mesa's lavapipe). The GPU scores every item and keeps each 1024-item chunk's
//! best candidates (`select.wgsl`); the CPU recomputes with [`ItemMatrix::score`] the candidates
//! that, within the rounding difference between the two (see [`ItemMatrix::error_bound`]),
//! could be in the top-k, and rescans whole any chunk whose first dropped item could. So the
//! GPU path returns exactly what the CPU path does — same items, same order, same scores —
//! however the GPU rounds or breaks ties.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use thiserror::Error;
use wgpu::util::DeviceExt;

pub use crate::infer::score::Preference;
use crate::infer::score::{f32_bytes, u32_bytes, Dtype, ItemMask, ItemMatrix};
use crate::infer::topk::Selection;

const CHUNK: usize = 1024;
const NONE: u32 = u32::MAX;
const SHADER: &str = include_str!("select.wgsl");

const DOT_F32: &str = "fn item_dot(row: u32) -> f32 {
    var acc = vec4<f32>(0.0);
    let base = row * params.lanes;
    for (var l = 0u; l < params.lanes; l++) {
        acc += user[l] * bitcast<vec4<f32>>(items[base + l]);
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
}";

// Eight halves per lane; `unpack2x16float` is core WGSL, so no `shader-f16` feature is needed.
const DOT_F16: &str = "fn item_dot(row: u32) -> f32 {
    var acc = vec4<f32>(0.0);
    let base = row * params.lanes;
    for (var l = 0u; l < params.lanes; l++) {
        let w = items[base + l];
        let a = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
        let b = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
        acc += user[2u * l] * a + user[2u * l + 1u] * b;
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
}";

#[derive(Debug, Error, Clone, PartialEq)]
pub enum GpuError {
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    #[error("the GPU device could not be created: {0}")]
    Device(String),
    #[error("the scoring shader did not compile: {0}")]
    Shader(String),
    #[error("the GPU ran out of memory for {0}")]
    OutOfMemory(&'static str),
    #[error("the GPU device was lost: {0}")]
    Lost(String),
    #[error("the GPU rejected the work: {0}")]
    Validation(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error("one item row ({row_bytes} bytes) is larger than the GPU's largest storage binding")]
    TooLarge { row_bytes: usize },
}

impl GpuError {
    pub fn code(&self) -> &'static str {
        match self {
            GpuError::NoAdapter(_) => "gpu_unavailable",
            GpuError::Device(_) => "gpu_device",
            GpuError::Shader(_) => "gpu_shader",
            GpuError::OutOfMemory(_) => "gpu_out_of_memory",
            GpuError::Lost(_) => "gpu_lost",
            GpuError::Validation(_) => "gpu_validation",
            GpuError::Readback(_) => "gpu_readback",
            GpuError::TooLarge { .. } => "gpu_too_large",
        }
    }
}

/// What the adapter is, for the "which path and why" report.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
}

/// As `scoring()` shows it: `name (backend, device type)`.
impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

/// How a GPU selection went: how much the CPU had to redo.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SelectStats {
    pub chunks: usize,
    pub candidates: usize,
    /// Candidates whose score the CPU recomputed (those near or above the k-th).
    pub rescored: usize,
    /// Chunks rescored on the CPU because a dropped item was within the rounding bound.
    pub rescored_chunks: usize,
}

/// A run of rows small enough for one storage binding.
struct Page {
    rows: std::ops::Range<usize>,
    first_chunk: usize,
    items: wgpu::Buffer,
    params: wgpu::Buffer,
}

/// Buffers whose size depends on `k`, rebuilt when a larger `k` comes.
struct Output {
    k_out: usize,
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    groups: Vec<wgpu::BindGroup>,
}

pub struct GpuScorer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    pages: Vec<Page>,
    user: wgpu::Buffer,
    bias: wgpu::Buffer,
    mask: wgpu::Buffer,
    output: Option<Output>,
    chunks: usize,
    rows: usize,
    stride: usize,
    has_bias: bool,
    /// Set by the device-lost and uncaptured-error callbacks; a broken scorer is not used again.
    broken: Arc<AtomicBool>,
    adapter: AdapterSummary,
}

impl std::fmt::Debug for GpuScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuScorer").field("adapter", &self.adapter).field("rows", &self.rows).field("pages", &self.pages.len()).finish()
    }
}

/// Finds an adapter (WebGPU in the browser, Vulkan natively), without creating a device.
pub async fn probe() -> Result<(wgpu::Instance, wgpu::Adapter), GpuError> {
    // wgpu's WebGPU backend expects a window or worker with `navigator.gpu`; elsewhere (Node,
    // browsers without WebGPU) it must not be asked at all.
    #[cfg(target_arch = "wasm32")]
    {
        let global = js_sys::global();
        let navigator = js_sys::Reflect::get(&global, &"navigator".into()).ok().filter(|n| n.is_object());
        let gpu = navigator.and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok()).filter(|g| g.is_object());
        if gpu.is_none() {
            return Err(GpuError::NoAdapter("this environment has no WebGPU (navigator.gpu is missing)".into()));
        }
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() })
        .await
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
    Ok((instance, adapter))
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    let name = if info.name.is_empty() { "unnamed adapter".to_string() } else { info.name.clone() };
    AdapterSummary { name, backend: format!("{:?}", info.backend), device_type: format!("{:?}", info.device_type) }
}

impl GpuScorer {
    /// Creates the device, compiles the shader and uploads the matrix (once; every request
    /// reuses it). Async all the way: the page keeps running while the shader compiles.
    pub async fn new(matrix: &ItemMatrix) -> Result<GpuScorer, GpuError> {
        let (_instance, adapter) = probe().await?;
        Self::with_adapter(&adapter, matrix).await
    }

    pub async fn with_adapter(adapter: &wgpu::Adapter, matrix: &ItemMatrix) -> Result<GpuScorer, GpuError> {
        Self::paged(adapter, matrix, usize::MAX).await
    }

    /// As [`GpuScorer::with_adapter`], with pages of at most `max_chunks` chunks (tests use small
    /// pages to exercise what a catalog beyond one storage binding does).
    #[doc(hidden)]
    pub async fn paged(adapter: &wgpu::Adapter, matrix: &ItemMatrix, max_chunks: usize) -> Result<GpuScorer, GpuError> {
        let summary = summary(&adapter.get_info());
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("foresight scoring"),
                // The large-buffer limits are what a big catalog needs; ask for all the adapter has.
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let broken = Arc::new(AtomicBool::new(false));
        {
            let b = broken.clone();
            device.set_device_lost_callback(move |_, _| b.store(true, Ordering::SeqCst));
            let b = broken.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                tracing_error(&e);
                b.store(true, Ordering::SeqCst);
            }));
        }

        let source = SHADER.replace("//ITEM_DOT", if matrix.dtype() == Dtype::F32 { DOT_F32 } else { DOT_F16 });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("foresight select"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("foresight select"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, true),
                storage(5, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("foresight select"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("foresight select"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Shader(e.to_string()));
        }

        // Pages: as many whole chunks as fit one storage binding (and one dispatch).
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) as usize;
        let row_bytes = matrix.row_bytes();
        let chunks_per_page = (max_binding / row_bytes / CHUNK).min(limits.max_compute_workgroups_per_dimension as usize).min(max_chunks);
        if chunks_per_page == 0 {
            return Err(GpuError::TooLarge { row_bytes });
        }
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut pages = Vec::new();
        let mut start = 0;
        let mut first_chunk = 0;
        while start < matrix.rows() {
            let end = (start + chunks_per_page * CHUNK).min(matrix.rows());
            let items = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("foresight items"),
                contents: matrix.gpu_bytes(start..end),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let params = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("foresight params"),
                size: 32,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            pages.push(Page { rows: start..end, first_chunk, items, params });
            first_chunk += (end - start).div_ceil(CHUNK);
            start = end;
        }
        let bias_values: Vec<f32> = matrix.bias().map(<[f32]>::to_vec).unwrap_or_else(|| vec![0.0; 4]);
        let bias = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("foresight bias"),
            contents: f32_bytes(&bias_values),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let user = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("foresight user"),
            size: (matrix.stride() * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mask = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("foresight mask"),
            size: (matrix.rows().div_ceil(32).max(4) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if oom.pop().await.is_some() {
            return Err(GpuError::OutOfMemory("the item matrix"));
        }
        Ok(GpuScorer {
            device,
            queue,
            pipeline,
            layout,
            pages,
            user,
            bias,
            mask,
            output: None,
            chunks: first_chunk,
            rows: matrix.rows(),
            stride: matrix.stride(),
            has_bias: matrix.bias().is_some(),
            broken,
            adapter: summary,
        })
    }

    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// False once the device was lost or reported an error: callers go to the CPU.
    pub fn is_usable(&self) -> bool {
        !self.broken.load(Ordering::SeqCst)
    }

    fn output(&mut self, k_out: usize) -> Result<&Output, GpuError> {
        if self.output.as_ref().is_none_or(|o| o.k_out < k_out) {
            let bytes = (self.chunks * (k_out + 1) * 8) as u64;
            let out = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("foresight candidates"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("foresight readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let groups = self
                .pages
                .iter()
                .map(|p| {
                    self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("foresight select"),
                        layout: &self.layout,
                        entries: &[
                            wgpu::BindGroupEntry { binding: 0, resource: p.params.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 1, resource: self.user.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 2, resource: p.items.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 3, resource: self.bias.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 4, resource: self.mask.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 5, resource: out.as_entire_binding() },
                        ],
                    })
                })
                .collect();
            self.output = Some(Output { k_out, out, staging, groups });
        }
        self.output.as_ref().ok_or(GpuError::OutOfMemory("the candidate buffer"))
    }

    /// The `k` best unmasked items, identical to `matrix.top_k(user, k, mask)`. `matrix` must
    /// be the one this scorer was built from; `user` is padded ([`ItemMatrix::user`]).
    pub async fn top_k(
        &mut self,
        matrix: &ItemMatrix,
        user: &[f32],
        k: usize,
        mask: Option<&ItemMask>,
    ) -> Result<(Vec<(usize, f32)>, SelectStats), GpuError> {
        if !self.is_usable() {
            return Err(GpuError::Lost("an earlier error left the device unusable".into()));
        }
        debug_assert!(matrix.rows() == self.rows && matrix.stride() == self.stride && user.len() == self.stride);
        if k == 0 || self.rows == 0 {
            return Ok((Vec::new(), SelectStats::default()));
        }
        let Some(bound) = matrix.error_bound(user) else {
            // Scores near f32's range: only the CPU's comparison is meaningful.
            return Ok((
                matrix.top_k(user, k, mask),
                SelectStats { chunks: self.chunks, candidates: 0, rescored: 0, rescored_chunks: self.chunks },
            ));
        };
        let k_out = k.min(CHUNK);
        let mask = mask.filter(|m| !m.is_empty());
        let lanes = if matrix.dtype() == Dtype::F32 { self.stride / 4 } else { self.stride / 8 };
        let flags = u32::from(self.has_bias) | (u32::from(mask.is_some()) << 1);
        self.queue.write_buffer(&self.user, 0, f32_bytes(user));
        if let Some(m) = mask {
            self.queue.write_buffer(&self.mask, 0, u32_bytes(m.words()));
        }
        for p in &self.pages {
            let params = [p.rows.len() as u32, p.rows.start as u32, lanes as u32, k_out as u32, p.first_chunk as u32, flags, 0, 0];
            self.queue.write_buffer(&p.params, 0, u32_bytes(&params));
        }
        let used = (self.chunks * (k_out + 1) * 8) as u64;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        self.output(k_out)?;
        let output = self.output.as_ref().ok_or(GpuError::OutOfMemory("the candidate buffer"))?;
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("foresight select") });
        {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("foresight select"), timestamp_writes: None });
            pass.set_pipeline(&self.pipeline);
            for (p, group) in self.pages.iter().zip(&output.groups) {
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(p.rows.len().div_ceil(CHUNK) as u32, 1, 1);
            }
        }
        encoder.copy_buffer_to_buffer(&output.out, 0, &output.staging, 0, used);
        self.queue.submit([encoder.finish()]);
        if let Some(e) = oom.pop().await {
            tracing_error(&e);
            return Err(GpuError::OutOfMemory("the scoring pass"));
        }
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Validation(e.to_string()));
        }

        let (tx, rx) = futures_channel::oneshot::channel();
        output.staging.slice(0..used).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GpuError::Readback(e.to_string())),
            Err(_) => return Err(GpuError::Lost("the readback was dropped".into())),
        }
        let words: Vec<u32> = {
            let view = output.staging.get_mapped_range(0..used).map_err(|e| GpuError::Readback(e.to_string()))?;
            view.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        output.staging.unmap();
        if !self.is_usable() {
            return Err(GpuError::Lost("the device was lost while scoring".into()));
        }
        Ok(merge(matrix, user, k, mask, Readback { words: &words, k_out, chunks: self.chunks, bound }))
    }
}

/// The CPU half. `words`: per chunk, `k_out` (GPU score bits, index) pairs and the first
/// dropped one. With `g_k` the k-th best GPU score among the candidates and `e` the rounding
/// bound, the k candidates at or above `g_k` score at least `g_k − e` on the CPU, so anything
/// the GPU scored below `g_k − 2e` scores below all of them: out. Only the candidates above that
/// cut are rescored exactly (about k of them), and only chunks whose first dropped item is above
/// it are rescanned whole.
/// What the GPU pass returned, and how to read it.
struct Readback<'a> {
    words: &'a [u32],
    k_out: usize,
    chunks: usize,
    bound: f32,
}

fn merge(matrix: &ItemMatrix, user: &[f32], k: usize, mask: Option<&ItemMask>, readback: Readback<'_>) -> (Vec<(usize, f32)>, SelectStats) {
    let Readback { words, k_out, chunks, bound } = readback;
    let per_chunk = 2 * (k_out + 1);
    let mut candidates: Vec<(usize, usize, f32)> = Vec::with_capacity(chunks * k_out);
    for (c, entries) in words.chunks_exact(per_chunk).take(chunks).enumerate() {
        for pair in entries[..2 * k_out].chunks_exact(2) {
            let index = pair[1] as usize;
            if pair[1] != NONE && index < matrix.rows() {
                candidates.push((c, index, f32::from_bits(pair[0])));
            }
        }
    }
    // f64: the cut itself must not round upward past an item that belongs.
    let cut = if candidates.len() >= k {
        let mut gpu: Vec<f32> = candidates.iter().map(|c| c.2).collect();
        let (_, kth, _) = gpu.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        *kth as f64 - 2.0 * bound as f64
    } else {
        f64::NEG_INFINITY
    };
    let mut rescan = vec![false; chunks];
    for (c, entries) in words.chunks_exact(per_chunk).take(chunks).enumerate() {
        let (bits, index) = (entries[2 * k_out], entries[2 * k_out + 1]);
        rescan[c] = index != NONE && f32::from_bits(bits) as f64 >= cut;
    }
    let mut sel = Selection::new(k);
    let mut row = vec![0f32; matrix.stride()];
    let mut rescored = 0;
    for &(c, index, gpu) in &candidates {
        if !rescan[c] && gpu as f64 >= cut {
            sel.offer(index, matrix.score(user, index, &mut row));
            rescored += 1;
        }
    }
    let mut rescanned = 0;
    for (c, _) in rescan.iter().enumerate().filter(|(_, r)| **r) {
        rescanned += 1;
        let range = c * CHUNK..((c + 1) * CHUNK).min(matrix.rows());
        matrix.select_range(user, range, mask, &mut sel);
    }
    (sel.into_sorted(), SelectStats { chunks, candidates: candidates.len(), rescored, rescored_chunks: rescanned })
}

fn tracing_error(e: &wgpu::Error) {
    tracing_message(&format!("GPU error, scoring falls back to the CPU: {e}"));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Gpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }
}

/// The path in use and why, for `scoringBackend()` and the logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub backend: Backend,
    pub reason: String,
    pub adapter: Option<AdapterSummary>,
    /// Median of the calibration runs (top-20 over the whole catalog), milliseconds.
    pub cpu_ms: Option<f64>,
    pub gpu_ms: Option<f64>,
}

/// Scores on the chosen path; any GPU failure moves it to the CPU for good, and the request
/// that met the failure is answered on the CPU — never lost.
#[derive(Debug)]
pub struct Scoring {
    gpu: Option<GpuScorer>,
    choice: Choice,
}

const CALIBRATION_RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

impl Scoring {
    pub fn cpu(reason: impl Into<String>) -> Self {
        Scoring { gpu: None, choice: Choice { backend: Backend::Cpu, reason: reason.into(), adapter: None, cpu_ms: None, gpu_ms: None } }
    }

    /// Probes the adapter, builds the GPU scorer and, for `auto`, times both paths on the
    /// real matrix (`clock` in milliseconds: `performance.now()` in the browser).
    pub async fn init(matrix: &ItemMatrix, preference: Preference, clock: &dyn Fn() -> f64) -> Scoring {
        if preference == Preference::Cpu {
            return Scoring::cpu("the CPU was asked for (scoring: \"cpu\")");
        }
        let adapter = match probe().await {
            Ok((_instance, adapter)) => adapter,
            Err(e) => return Scoring::cpu(format!("no WebGPU adapter ({e})")),
        };
        let mut gpu = match GpuScorer::with_adapter(&adapter, matrix).await {
            Ok(g) => g,
            Err(e) => return Scoring::cpu(format!("WebGPU is present but unusable: {e}")),
        };
        let adapter = Some(gpu.adapter().clone());
        // A fixed, non-degenerate visitor vector.
        let mut probe_user = vec![0f32; matrix.dims()];
        for (i, u) in probe_user.iter_mut().enumerate() {
            *u = 1.0 / (1.0 + i as f32);
        }
        let user = match matrix.user(&probe_user) {
            Ok(u) => u,
            Err(e) => return Scoring::cpu(format!("calibration failed: {e}")),
        };
        let mut cpu_times = Vec::new();
        let mut gpu_times = Vec::new();
        for run in 0..=CALIBRATION_RUNS {
            let t = clock();
            let expected = matrix.top_k(&user, 20, None);
            let cpu = clock() - t;
            let t = clock();
            let got = gpu.top_k(matrix, &user, 20, None).await;
            let took = clock() - t;
            match got {
                Ok((got, _)) if got == expected => {}
                Ok(_) => return Scoring::cpu("the GPU's answer differed from the CPU's in calibration"),
                Err(e) => return Scoring::cpu(format!("the GPU failed in calibration: {e}")),
            }
            // The first run pays for pipeline warm-up and buffer creation on both sides.
            if run > 0 {
                cpu_times.push(cpu);
                gpu_times.push(took);
            }
        }
        let (cpu_ms, gpu_ms) = (median(cpu_times), median(gpu_times));
        let name = adapter.as_ref().map(|a| a.name.clone()).unwrap_or_default();
        let (backend, reason) = match preference {
            Preference::Gpu => (Backend::Gpu, format!("the GPU was asked for (scoring: \"gpu\"); adapter {name}")),
            _ if gpu_ms < cpu_ms => (Backend::Gpu, format!("the GPU ({name}) was faster in calibration: {gpu_ms:.2} ms vs {cpu_ms:.2} ms")),
            _ => (Backend::Cpu, format!("the CPU was faster in calibration: {cpu_ms:.2} ms vs {gpu_ms:.2} ms on {name}")),
        };
        let choice = Choice { backend, reason, adapter, cpu_ms: Some(cpu_ms), gpu_ms: Some(gpu_ms) };
        Scoring { gpu: (backend == Backend::Gpu).then_some(gpu), choice }
    }

    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    /// The `k` best unmasked items for a padded visitor vector, on the chosen path.
    pub async fn top_k(&mut self, matrix: &ItemMatrix, user: &[f32], k: usize, mask: Option<&ItemMask>) -> Vec<(usize, f32)> {
        if let Some(gpu) = self.gpu.as_mut() {
            match gpu.top_k(matrix, user, k, mask).await {
                Ok((top, _)) => return top,
                Err(e) => {
                    tracing_message(&format!("GPU scoring failed ({e}); scoring on the CPU from now on"));
                    self.gpu = None;
                    self.choice.backend = Backend::Cpu;
                    self.choice.reason = format!("the GPU failed ({}): {e}", e.code());
                }
            }
        }
        matrix.top_k(user, k, mask)
    }

    /// Test hook: what a device loss does to the next request.
    #[doc(hidden)]
    pub fn break_gpu(&mut self) {
        if let Some(g) = &self.gpu {
            g.broken.store(true, Ordering::SeqCst);
        }
    }
}

impl Choice {
    /// `{backend, reason, adapter?, cpuMs?, gpuMs?}` for JavaScript (the WebGPU module's
    /// `choice()` and `BenchScorer`'s).
    #[cfg(target_arch = "wasm32")]
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        let o = js_sys::Object::new();
        let set = |k: &str, v: wasm_bindgen::JsValue| {
            let _ = js_sys::Reflect::set(&o, &k.into(), &v);
        };
        set("backend", self.backend.as_str().into());
        set("reason", self.reason.clone().into());
        if let Some(a) = &self.adapter {
            set("adapter", a.to_string().into());
        }
        if let Some(ms) = self.cpu_ms {
            set("cpuMs", ms.into());
        }
        if let Some(ms) = self.gpu_ms {
            set("gpuMs", ms.into());
        }
        o.into()
    }
}

/// `performance.now()` in a window or a worker, for [`Scoring::init`]'s calibration.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now = perf.as_ref().and_then(|p| js_sys::Reflect::get(p, &"now".into()).ok()).and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    match (perf, now) {
        (Some(p), Some(f)) => f.call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now),
        _ => js_sys::Date::now(),
    }
}

fn tracing_message(m: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::warn_1(&format!("foresight: {m}").into());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("foresight: {m}");
}
