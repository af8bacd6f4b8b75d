# Stand-ins for packages Debian's python lacks (huggingface_hub, safetensors, packaging, tqdm, ...) and for torch
# attributes PyTorch 1.13 does not have, so that diffusers' model modules import from a source checkout. Used only by
# make_golden.py; the model code that runs is diffusers' own.
import sys, types, importlib.abc, importlib.machinery

STUB_ROOTS = {"tqdm", "packaging", "huggingface_hub", "safetensors", "requests", "filelock", "regex", "importlib_metadata", "httpx", "hf_xet"}

class _Anything(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "version":
            return _Version
        if self.__name__.endswith(".version") and name in ("parse", "Version"):
            return _V
        if name in ("allow_in_graph", "disable", "assume_constant_result"):  # decorators: identity
            return lambda f=None, *a, **k: f
        if name.isupper():  # constants such as HF_HOME: a harmless string
            return "/tmp/golden/hf-stub"
        return _Dummy

class _Dummy:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _Dummy()
    def __getattr__(self, n): return _Dummy()
    def __mro_entries__(self, bases): return (object,)
    def __or__(self, other): return self
    def __ror__(self, other): return self
    def __getitem__(self, item): return self

class _Version:
    @staticmethod
    def parse(v): return _V(v)
    Version = None

class _V:
    def __init__(self, v): self.s = v.s if isinstance(v, _V) else str(v)
    def __str__(self): return self.s
    def _key(self):
        import re
        return tuple(int(x) for x in re.findall(r"\d+", self.s.split("+")[0])[:3])
    def __eq__(self, o): return self._key() == _V(o)._key()
    def __hash__(self): return hash(self._key())
    def __lt__(self, o): return self._key() < _V(o)._key()
    def __le__(self, o): return self._key() <= _V(o)._key()
    def __gt__(self, o): return self._key() > _V(o)._key()
    def __ge__(self, o): return self._key() >= _V(o)._key()
    @property
    def base_version(self): return ".".join(map(str, self._key()))
    @property
    def release(self): return self._key()
    major = property(lambda s: s._key()[0])
    minor = property(lambda s: s._key()[1])

class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in STUB_ROOTS:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None
    def create_module(self, spec):
        m = _Anything(spec.name)
        m.__path__ = []
        return m
    def exec_module(self, module): pass

sys.meta_path.insert(0, _Finder())

# diffusers checks installed package versions at import; nothing to check here.
_dvc = types.ModuleType("diffusers.dependency_versions_check")
_dvc.dep_version_check = lambda *a, **k: None
sys.modules["diffusers.dependency_versions_check"] = _dvc

# PyTorch 1.13 lacks some device namespaces diffusers' torch_utils touches at import time.
import torch
class _NoDevice:
    def __getattr__(self, n):
        return (lambda *a, **k: False) if n.startswith("is_") else (lambda *a, **k: 0)
for _name in ("xpu", "mtia", "mps"):
    if not hasattr(torch, _name):
        setattr(torch, _name, _NoDevice())
if not hasattr(torch.mps, "empty_cache"):
    torch.mps.empty_cache = lambda: None
for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "uint16", "uint32", "uint64", "float4_e2m1fn_x2",
              "int1", "int2", "int3", "int4", "int5", "int6", "int7", "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7"):
    if not hasattr(torch, _name):
        setattr(torch, _name, object())  # placeholder dtype, only used as a dictionary key by quantizer tables
import torch.distributed
if not hasattr(torch.distributed, "device_mesh"):
    class DeviceMesh: pass
    torch.distributed.device_mesh = types.SimpleNamespace(DeviceMesh=DeviceMesh)
sys.modules.setdefault("torch.distributed._functional_collectives", _Anything("torch.distributed._functional_collectives"))
if not hasattr(torch, "compiler"):
    torch.compiler = types.SimpleNamespace(disable=lambda f=None, *a, **k: (f if f is not None else (lambda g: g)),
                                           is_compiling=lambda: False, is_dynamo_compiling=lambda: False,
                                           allow_in_graph=lambda f: f, assume_constant_result=lambda f: f)

class _MissingTorchSubmodules(_Finder):
    """Last-resort finder: torch submodules that PyTorch 1.13 does not have become inert stand-ins."""
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith("torch."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

sys.meta_path.append(_MissingTorchSubmodules())
