"""Four PyTorch CNNs that are not in models/, written as a PyTorch user
writes them (plain nn.Module code, no tinycnn helpers), for the exporter's
tests. Each takes a 1×28×28 MNIST digit and returns 10 class scores.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    """LeCun et al. 1998: 5×5 convolutions, average pooling, three dense layers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1×1 expand, 3×3 depthwise, 1×1 linear projection,
    a residual add where the shape allows."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNetV2Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 1, 3),
            InvertedResidual(16, 24, 2, 3),   # 14×14
            InvertedResidual(24, 24, 1, 3),
            InvertedResidual(24, 32, 2, 3),   # 7×7
            InvertedResidual(32, 32, 1, 3),
        )
        self.head = nn.Sequential(nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.head(self.blocks(self.stem(x))))
        return self.fc(self.dropout(torch.flatten(x, 1)))


class CatBlock(nn.Module):
    """A residual block whose skip join is torch.cat (DenseNet-style): the
    block's input and two convolutions' outputs side by side."""

    def __init__(self, cin, growth, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, growth, 3, padding="same", dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(growth)
        self.conv2 = nn.Conv2d(growth, growth, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        z = self.relu(self.conv2(y))
        return torch.cat([x, y, z], dim=1)


class CatResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.block1 = CatBlock(16, 8)                  # 32 × 28 × 28
        self.trans1 = nn.Conv2d(32, 24, 1)
        self.pool1 = nn.MaxPool2d(2)                   # 14 × 14
        self.block2 = CatBlock(24, 12, dilation=2)     # 48 × 14 × 14
        self.trans2 = nn.Conv2d(48, 32, 1)
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)  # 7 × 7
        self.block3 = CatBlock(32, 16)                 # 64 × 7 × 7
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.pool1(F.relu(self.trans1(self.block1(x))))
        x = self.pool2(F.relu(self.trans2(self.block2(x))))
        x = self.gap(self.block3(x))
        return self.fc(x.view(x.size(0), -1))


class FunctionalNet(nn.Module):
    """Everything in forward() is a functional call; the weights are bare
    nn.Parameters (state_dict names w1, b1, …, not <module>.weight)."""

    def __init__(self):
        super().__init__()

        def param(*shape, fan_in):
            return nn.Parameter(torch.randn(*shape) * (2.0 / fan_in) ** 0.5)

        self.w1, self.b1 = param(12, 1, 3, 3, fan_in=9), nn.Parameter(torch.zeros(12))
        self.w2, self.b2 = param(12, 12, 3, 3, fan_in=108), nn.Parameter(torch.zeros(12))
        self.w3 = param(24, 12, 4, 4, fan_in=192)
        self.w4, self.b4 = param(24, 1, 3, 3, fan_in=9), nn.Parameter(torch.zeros(24))
        self.w5, self.b5 = param(10, 24 * 3 * 3, fan_in=216), nn.Parameter(torch.zeros(10))

    def forward(self, x):
        x = F.relu(F.conv2d(x, self.w1, self.b1, padding=1))
        y = F.hardtanh(F.conv2d(x, self.w2, self.b2, padding="same"), -1.0, 1.0)
        x = torch.add(x, y)
        x = F.max_pool2d(x, kernel_size=2)                      # 14 × 14
        x = F.relu6(F.conv2d(x, self.w3, None, padding="same"))  # 4×4 'same': padded 1 above/left, 2 below/right
        x = F.avg_pool2d(x, 2)                                  # 7 × 7
        x = torch.clamp(F.conv2d(x, self.w4, self.b4, stride=2, padding=1, groups=24), 0.0, 4.0)  # 4 × 4
        x = F.max_pool2d(x, 2, stride=1)                        # 3 × 3
        x = F.dropout(x, 0.25, training=self.training)
        x = torch.flatten(x, 1)
        return F.softmax(F.linear(x, self.w5, self.b5), dim=1)


# name → (constructor, the normalisation it is trained with: pixels p reach it as (p/255 − mean)/std)
ARCHS = {
    "lenet5": (LeNet5, 0.0, 1.0),                    # x = p/255
    "mobilenetv2": (MobileNetV2Small, 0.1307, 0.3081),
    "catresnet": (CatResNet, 0.5, 0.5),               # x in [-1, 1]
    "functional": (FunctionalNet, 0.0, 256 / 255),    # x = p/256
}
