// The per-element formulas of the unary and binary ops and of their derivatives, written once
// for both backends: kernels/cpu/elementwise.cpp and kernels/cuda/elementwise.cu loop over
// these. NaN propagates as in PyTorch (relu, clamp, maximum and minimum of a NaN are NaN).
#pragma once

#include <math.h>  // expf/exp, erff/erf, ... (host and, under nvcc, device)

#include "engine/host_device.h"    // EMBER_HOST_DEVICE
#include "kernels/kernel_table.h"  // UnaryOp, BinaryOp

namespace ember::kernels {

// Overloads that pick the float or double version of each libm function.
EMBER_HOST_DEVICE inline float m_exp(float x) {
  return expf(x);
}
EMBER_HOST_DEVICE inline double m_exp(double x) {
  return exp(x);
}
EMBER_HOST_DEVICE inline float m_log(float x) {
  return logf(x);
}
EMBER_HOST_DEVICE inline double m_log(double x) {
  return log(x);
}
EMBER_HOST_DEVICE inline float m_sqrt(float x) {
  return sqrtf(x);
}
EMBER_HOST_DEVICE inline double m_sqrt(double x) {
  return sqrt(x);
}
EMBER_HOST_DEVICE inline float m_erf(float x) {
  return erff(x);
}
EMBER_HOST_DEVICE inline double m_erf(double x) {
  return erf(x);
}
EMBER_HOST_DEVICE inline float m_tanh(float x) {
  return tanhf(x);
}
EMBER_HOST_DEVICE inline double m_tanh(double x) {
  return tanh(x);
}
EMBER_HOST_DEVICE inline float m_pow(float x, float y) {
  return powf(x, y);
}
EMBER_HOST_DEVICE inline double m_pow(double x, double y) {
  return pow(x, y);
}
EMBER_HOST_DEVICE inline float m_abs(float x) {
  return fabsf(x);
}
EMBER_HOST_DEVICE inline double m_abs(double x) {
  return fabs(x);
}

template <typename T>
EMBER_HOST_DEVICE inline bool is_nan(T x) {
  return x != x;
}

constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;                  // tanh-GELU's cubic coefficient

template <typename T>
EMBER_HOST_DEVICE inline T sigmoid_value(T x) {
  // Two forms so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + m_exp(-x));
  T e = m_exp(x);
  return e / (T(1) + e);
}

template <typename T>
EMBER_HOST_DEVICE inline T unary_value(UnaryOp op, T x, T alpha, T beta) {
  switch (op) {
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Exp:
      return m_exp(x);
    case UnaryOp::Log:
      return m_log(x);
    case UnaryOp::Sqrt:
      return m_sqrt(x);
    case UnaryOp::Rsqrt:
      return T(1) / m_sqrt(x);
    case UnaryOp::Abs:
      return m_abs(x);
    case UnaryOp::Relu:
      return (x > T(0) || is_nan(x)) ? x : T(0);
    case UnaryOp::GeluErf:
      return T(0.5) * x * (T(1) + m_erf(x * T(kSqrt1_2)));
    case UnaryOp::GeluTanh: {
      T inner = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
      return T(0.5) * x * (T(1) + m_tanh(inner));
    }
    case UnaryOp::Sigmoid:
      return sigmoid_value(x);
    case UnaryOp::Tanh:
      return m_tanh(x);
    case UnaryOp::PowScalar:
      return m_pow(x, alpha);
    case UnaryOp::Clamp: {  // max first, then min: with alpha > beta everything becomes beta
      T lower = x < alpha ? alpha : x;
      return lower > beta ? beta : lower;
    }
    case UnaryOp::AddScalar:
      return x + alpha;
    case UnaryOp::MulScalar:
      return x * alpha;
  }
  return x;
}

// d f(x) / dx, given x and y = f(x).
template <typename T>
EMBER_HOST_DEVICE inline T unary_derivative(UnaryOp op, T x, T y, T alpha, T beta) {
  switch (op) {
    case UnaryOp::Neg:
      return T(-1);
    case UnaryOp::Exp:
      return y;
    case UnaryOp::Log:
      return T(1) / x;
    case UnaryOp::Sqrt:
      return T(0.5) / y;
    case UnaryOp::Rsqrt:
      return T(-0.5) * y * y * y;  // d x^(-1/2) = -1/2 x^(-3/2)
    case UnaryOp::Abs:
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::Relu:
      return x > T(0) ? T(1) : T(0);
    case UnaryOp::GeluErf: {  // Phi(x) + x phi(x)
      T cdf = T(0.5) * (T(1) + m_erf(x * T(kSqrt1_2)));
      T pdf = T(kInvSqrt2Pi) * m_exp(T(-0.5) * x * x);
      return cdf + x * pdf;
    }
    case UnaryOp::GeluTanh: {
      T inner = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
      T t = m_tanh(inner);
      T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
    }
    case UnaryOp::Sigmoid:
      return y * (T(1) - y);
    case UnaryOp::Tanh:
      return T(1) - y * y;
    case UnaryOp::PowScalar:  // a x^(a-1); an exponent of 0 has derivative 0 everywhere
      return alpha == T(0) ? T(0) : alpha * m_pow(x, alpha - T(1));
    case UnaryOp::Clamp:
      return (x >= alpha && x <= beta) ? T(1) : T(0);
    case UnaryOp::AddScalar:
      return T(1);
    case UnaryOp::MulScalar:
      return alpha;
  }
  return T(0);
}

// Arithmetic binary ops (comparisons are handled by binary_compare).
template <typename T>
EMBER_HOST_DEVICE inline T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
    case BinaryOp::Maximum:
      return is_nan(a) ? a : (is_nan(b) ? b : (a > b ? a : b));
    case BinaryOp::Minimum:
      return is_nan(a) ? a : (is_nan(b) ? b : (a < b ? a : b));
    default:
      return T(0);
  }
}

template <typename T>
EMBER_HOST_DEVICE inline bool binary_compare(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Eq:
      return a == b;
    case BinaryOp::Ne:
      return a != b;
    case BinaryOp::Lt:
      return a < b;
    case BinaryOp::Le:
      return a <= b;
    case BinaryOp::Gt:
      return a > b;
    case BinaryOp::Ge:
      return a >= b;
    default:
      return false;
  }
}

}  // namespace ember::kernels
