//! Item embeddings for a visitor-tower recommender: read from NumPy `.npy` files (what
//! PyTorch / NumPy training code writes with `np.save`) or taken from the model's own scoring
//! head (`--split-head`), and stored in the bundle as f32 or f16.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, Context, Result};
use foresight::infer::score::ItemMatrix;
use npyz::{NpyFile, Order};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbeddingDtype {
    F32,
    /// Half the bytes (and GPU upload); scores move by ~1e-3 relative.
    F16,
}

/// An array's values as f32 with its shape, whatever float type it was saved as.
fn read(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let npy = NpyFile::new(BufReader::new(file)).with_context(|| format!("{} is not a NumPy .npy file", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == Order::Fortran;
    let type_str = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => bail!("{}: a structured array ({}); item embeddings must be a plain float array", path.display(), other.descr()),
    };
    let values: Vec<f32> = match type_str.trim_start_matches(['<', '>', '|', '=']) {
        "f4" => npy.into_vec::<f32>()?,
        "f8" => npy.into_vec::<f64>()?.into_iter().map(|v| v as f32).collect(),
        "f2" => npy.into_vec::<half::f16>()?.into_iter().map(f32::from).collect(),
        other => bail!("{}: dtype `{other}`; item embeddings must be float16, float32 or float64", path.display()),
    };
    if fortran && shape.len() == 2 {
        // Column-major on disk: transpose to rows.
        let (r, c) = (shape[0], shape[1]);
        let mut rows = vec![0f32; values.len()];
        for j in 0..c {
            for i in 0..r {
                rows[i * c + j] = values[j * r + i];
            }
        }
        return Ok((shape, rows));
    }
    Ok((shape, values))
}

/// An `items × dims` matrix.
pub fn read_matrix(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let (shape, values) = read(path)?;
    match shape[..] {
        [rows, dims] if rows > 0 && dims > 0 => Ok((rows, dims, values)),
        _ => bail!("{}: shape {shape:?}; item embeddings must be a 2-D array, one row per item", path.display()),
    }
}

/// One value per item.
pub fn read_bias(path: &Path, rows: usize) -> Result<Vec<f32>> {
    let (shape, values) = read(path)?;
    let ok = match shape[..] {
        [n] => n == rows,
        [1, n] | [n, 1] => n == rows,
        _ => false,
    };
    if !ok {
        bail!("{}: shape {shape:?}; the item bias needs one value per item ({rows})", path.display());
    }
    Ok(values)
}

/// The matrix in the stored dtype, with the reason when a value cannot be stored.
pub fn matrix(rows: usize, dims: usize, values: &[f32], bias: Option<Vec<f32>>, dtype: EmbeddingDtype) -> Result<ItemMatrix> {
    let m = match dtype {
        EmbeddingDtype::F32 => ItemMatrix::from_f32(rows, dims, values, bias),
        EmbeddingDtype::F16 => ItemMatrix::from_f32_as_f16(rows, dims, values, bias),
    };
    m.map_err(|e| {
        anyhow::anyhow!("the item embeddings: {e}{}", if dtype == EmbeddingDtype::F16 { " (float16 holds up to ±65504)" } else { "" })
    })
}
