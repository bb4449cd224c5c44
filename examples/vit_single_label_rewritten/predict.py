"""Classify one image with the best checkpoint: prints the class name and its probability."""
import argparse
import json

import torch
from PIL import Image
from torchvision import transforms

from train import create_model


def predict(img_path, weights_path="./weights/best_model.pth", json_path="./class_indices.json"):
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    data_transform = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor()])

    img = Image.open(img_path).convert("RGB")
    img = data_transform(img)
    img = torch.unsqueeze(img, dim=0)

    with open(json_path, "r") as f:
        class_indict = json.load(f)

    model = create_model(num_classes=len(class_indict)).to(device)
    model.load_state_dict(torch.load(weights_path, map_location=device))
    model.eval()
    with torch.no_grad():
        output = torch.squeeze(model(img.to(device))).cpu()
        predict = torch.sigmoid(output)
        predict_cla = torch.argmax(predict).numpy()

    return class_indict[str(predict_cla)], predict[predict_cla].item()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--weights", default="./weights/best_model.pth")
    args = parser.parse_args()
    name, prob = predict(args.image, args.weights)
    print("class: {:10}   prob: {:.3}".format(name, prob))
